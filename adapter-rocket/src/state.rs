//! The server the fairing manages, as guards find it.

use rocket::Request;
use tessera::{HttpResponse, Server};

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
