//! What the fairing leaves in managed state for guards and data guards that
//! cannot name the store type: the server behind a store-erased trait object.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use rocket::Request;
use tessera::{AccessToken, BearerError, Server, Store};

type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// The operations of a [`Server`] that guards need, without its store type.
trait ErasedServer: Send + Sync {
    fn verify_bearer<'a>(
        &'a self,
        authorization: Option<&'a str>,
        query: Option<&'a str>,
    ) -> BoxFuture<'a, Result<AccessToken, BearerError>>;
    fn realm(&self) -> &str;
    fn max_body_bytes(&self) -> usize;
}

impl<S: Store> ErasedServer for Server<S> {
    fn verify_bearer<'a>(
        &'a self,
        authorization: Option<&'a str>,
        query: Option<&'a str>,
    ) -> BoxFuture<'a, Result<AccessToken, BearerError>> {
        Box::pin(Server::verify_bearer(self, authorization, query))
    }

    fn realm(&self) -> &str {
        &self.config().realm
    }

    fn max_body_bytes(&self) -> usize {
        self.config().max_body_bytes
    }
}

/// Managed by [`crate::TesseraFairing`]; private, so embedders cannot collide with it.
#[derive(Clone)]
pub(crate) struct Installed(Arc<dyn ErasedServer>);

impl Installed {
    pub(crate) fn new<S: Store>(server: &Server<S>) -> Self {
        Self(Arc::new(server.clone()))
    }

    /// The installation serving `req`, if the fairing is attached.
    pub(crate) fn of<'r>(req: &'r Request<'_>) -> Option<&'r Self> {
        let found = req.rocket().state::<Self>();
        if found.is_none() {
            tracing::error!(
                "a tessera-rocket guard was used without the fairing: attach `tessera_rocket::Tessera::fairing(server)`"
            );
        }
        found
    }

    pub(crate) async fn verify_bearer(
        &self,
        authorization: Option<&str>,
        query: Option<&str>,
    ) -> Result<AccessToken, BearerError> {
        self.0.verify_bearer(authorization, query).await
    }

    pub(crate) fn realm(&self) -> &str {
        self.0.realm()
    }

    pub(crate) fn max_body_bytes(&self) -> usize {
        self.0.max_body_bytes()
    }
}
