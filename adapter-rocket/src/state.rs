//! The server the fairing manages, as guards find it.

use rocket::Request;
use tessera::{HttpResponse, Server, SharedVerifier, TokenVerifier};

/// The [`Server`] the fairing manages for `req`'s rocket, or the core's
/// `500` answer when the fairing is not attached.
pub(crate) fn server_of<'r>(req: &'r Request<'_>) -> Result<&'r Server, HttpResponse> {
    req.rocket().state::<Server>().ok_or_else(|| {
        tracing::error!(
            "a tessera-rocket guard was used without the fairing: attach `tessera_rocket::fairing(server)`"
        );
        HttpResponse::misconfigured()
    })
}

/// The verifier of bearer tokens for `req`'s rocket: the one the
/// [`resource_server`](crate::resource_server) fairing manages, else the
/// [`Server`] of the main fairing; the core's `500` answer without either.
pub(crate) fn verifier_of<'r>(req: &'r Request<'_>) -> Result<&'r dyn TokenVerifier, HttpResponse> {
    if let Some(verifier) = req.rocket().state::<SharedVerifier>() {
        return Ok(verifier);
    }
    Ok(server_of(req)?)
}
