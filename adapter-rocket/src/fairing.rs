//! The fairing that installs Tessera in a rocket.

use rocket::fairing::{self, Fairing, Info, Kind};
use rocket::http::Method;
use rocket::{Build, Data, Request, Response, Rocket};
use tessera::{Server, SharedVerifier, TokenVerifier};

use crate::endpoints;
use crate::rejection;

/// A fairing that, at ignition:
///
/// - mounts every endpoint of the core's table ([`Server::routes`]: metadata,
///   token, revocation, introspection, and whatever the core serves next)
///   at its path, for every method, so the core answers e.g. `GET /token`
///   with its `405`;
/// - manages `server`, so your routes can take `&State<Server>` (e.g. for
///   the authorization endpoint's pages, routed at
///   [`Server::authorization_path`]), and the [`crate::Bearer`],
///   [`crate::Scoped`] and [`crate::OAuthRequest`] guards find it.
///
/// Its response hook puts the core's answer (`WWW-Authenticate` included)
/// in place of rocket's catcher when one of these guards failed. Its
/// request hook undoes rocket's method override on the core's endpoints
/// and the authorization endpoint (see [`undo_method_override`]); your own
/// routes keep rocket's `_method` convention.
pub fn fairing(server: Server) -> TesseraFairing {
    TesseraFairing { server }
}

/// The fairing made by [`fairing()`](crate::fairing()).
#[derive(Debug)]
pub struct TesseraFairing {
    server: Server,
}

#[rocket::async_trait]
impl Fairing for TesseraFairing {
    fn info(&self) -> Info {
        Info {
            name: "Tessera OAuth 2",
            kind: Kind::Ignite | Kind::Request | Kind::Response | Kind::Singleton,
        }
    }

    async fn on_request(&self, req: &mut Request<'_>, data: &mut Data<'_>) {
        let path = req.uri().path();
        // The core's endpoints answer their exact path only; the
        // authorization endpoint is the embedder's route, which rocket
        // matches by decoded segments (`/authorize/`, `//authorize`).
        let authorization = self
            .server
            .authorization_path()
            .split('/')
            .filter(|s| !s.is_empty());
        let ours = self.server.routes().iter().any(|r| path == r.path.as_str())
            || path.segments().eq(authorization);
        if ours {
            undo_method_override(req, data).await;
        }
    }

    async fn on_ignite(&self, rocket: Rocket<Build>) -> fairing::Result {
        Ok(rocket
            .mount("/", endpoints::routes(&self.server))
            .manage(self.server.clone()))
    }

    async fn on_response<'r>(&self, req: &'r Request<'_>, res: &mut Response<'r>) {
        rejection::apply(req, res);
    }
}

/// A fairing for a resource server whose authorization server runs
/// elsewhere: it manages `verifier` (e.g. local JWT validation against the
/// authorization server's JWKS, or remote introspection, RFC 7662, from
/// the `tessera-resource-server` crate), which the [`crate::Bearer`] and
/// [`crate::Scoped`] guards then ask instead of a [`Server`], and puts the
/// core's answer (`WWW-Authenticate` with `resource_metadata`, RFC 9728
/// §5.1) in place of rocket's catcher when they refuse a request. It
/// mounts no endpoint.
pub fn resource_server(verifier: impl TokenVerifier) -> ResourceServerFairing {
    ResourceServerFairing {
        verifier: SharedVerifier::new(verifier),
    }
}

/// The fairing made by [`resource_server`].
#[derive(Debug)]
pub struct ResourceServerFairing {
    verifier: SharedVerifier,
}

#[rocket::async_trait]
impl Fairing for ResourceServerFairing {
    fn info(&self) -> Info {
        Info {
            name: "Tessera resource server",
            kind: Kind::Ignite | Kind::Response | Kind::Singleton,
        }
    }

    async fn on_ignite(&self, rocket: Rocket<Build>) -> fairing::Result {
        Ok(rocket.manage(self.verifier.clone()))
    }

    async fn on_response<'r>(&self, req: &'r Request<'_>, res: &mut Response<'r>) {
        rejection::apply(req, res);
    }
}

/// Puts back the `POST` that rocket 0.5 rewrote: rocket reads a form `POST`
/// whose first field is `_method` (`_method=put&...`) as a request of that
/// method, an HTML-forms convention. OAuth's endpoints take `POST` (RFC
/// 6749 §3.2) and name their parameters; no client means `_method` so, and
/// axum and every other server see the `POST` that was sent.
/// [`fairing()`](crate::fairing())'s request hook calls it for the core's
/// endpoints and the authorization endpoint, before a route is chosen; call
/// it from a fairing of your own for other paths. Rocket 0.5 leaves no
/// trace of the rewrite, so a `PUT` whose form body begins with
/// `_method=put` becomes a `POST` too.
pub async fn undo_method_override(req: &mut Request<'_>, data: &mut Data<'_>) {
    // Rocket's own test (`Rocket::preprocess_request`): a form whose first
    // field is `_method`, naming the method the request now has.
    if req.method() == Method::Post || !req.content_type().is_some_and(|ct| ct.is_form()) {
        return;
    }
    let method = req.method();
    let peeked = data.peek("_method=delete".len()).await;
    let overridden = std::str::from_utf8(peeked)
        .ok()
        .and_then(|form| rocket::form::Form::values(form).next())
        .filter(|field| field.name == "_method")
        .and_then(|field| field.value.parse::<Method>().ok())
        .is_some_and(|named| named == method);
    if overridden {
        req.set_method(Method::Post);
    }
}
