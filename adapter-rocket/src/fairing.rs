//! The fairing that installs Tessera in a rocket.

use rocket::fairing::{self, Fairing, Info, Kind};
use rocket::{Build, Request, Response, Rocket};
use tessera::{Server, Store};

use crate::endpoints;
use crate::installed::Installed;
use crate::rejection;

/// The entry point: `rocket::build().attach(Tessera::fairing(server))`.
#[derive(Debug, Clone, Copy)]
pub struct Tessera;

impl Tessera {
    /// A fairing that, at ignition:
    ///
    /// - mounts the metadata, token, revocation and introspection endpoints
    ///   at the paths of `server`'s configuration, relative to its issuer
    ///   (for `http://host:port` that is `/.well-known/oauth-authorization-server`,
    ///   `/token`, `/revoke`, `/introspect`), for every method, so the core
    ///   answers e.g. `GET /token` with its `405`;
    /// - manages `server`, so your routes can take `&State<Server<S>>`
    ///   (e.g. for the authorization endpoint's pages);
    /// - installs what the [`crate::Bearer`], [`crate::Scoped`] and
    ///   [`crate::OAuthRequest`] guards need.
    ///
    /// Its response hook puts the core's answer (`WWW-Authenticate`
    /// included) in place of rocket's catcher when one of these guards failed.
    ///
    /// A configured path rocket cannot route aborts the launch with an error.
    pub fn fairing<S: Store>(server: Server<S>) -> TesseraFairing<S> {
        TesseraFairing { server }
    }

    /// The path of the authorization endpoint as rocket sees it: the
    /// issuer's path followed by
    /// [`paths.authorize`](tessera::config::EndpointPaths::authorize), e.g.
    /// `/authorize`. Mount your authorization route (its login and consent
    /// pages are yours) there, so it is where the metadata says.
    pub fn authorization_path<S: Store>(server: &Server<S>) -> String {
        let config = server.config();
        format!(
            "{}{}",
            endpoints::issuer_path(&config.issuer),
            config.paths.authorize
        )
    }
}

/// The fairing made by [`Tessera::fairing`].
#[derive(Debug)]
pub struct TesseraFairing<S> {
    server: Server<S>,
}

#[rocket::async_trait]
impl<S: Store> Fairing for TesseraFairing<S> {
    fn info(&self) -> Info {
        Info {
            name: "Tessera OAuth 2",
            kind: Kind::Ignite | Kind::Response | Kind::Singleton,
        }
    }

    async fn on_ignite(&self, rocket: Rocket<Build>) -> fairing::Result {
        match endpoints::routes(&self.server) {
            Ok(routes) => Ok(rocket
                .mount("/", routes)
                .manage(self.server.clone())
                .manage(Installed::new(&self.server))),
            Err(e) => {
                tracing::error!("{e}");
                rocket::error!("{e}");
                Err(rocket)
            }
        }
    }

    async fn on_response<'r>(&self, req: &'r Request<'_>, res: &mut Response<'r>) {
        rejection::apply(req, res);
    }
}
