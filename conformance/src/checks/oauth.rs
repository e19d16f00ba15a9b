//! The `oauth2` crate on the client side, over an HTTP client that records
//! each exchange so that headers (`Cache-Control`) and raw bodies can be
//! checked and reported.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};

use oauth2::basic::BasicClient;
use oauth2::{
    AsyncHttpClient, AuthUrl, ClientId, ClientSecret, EndpointNotSet, EndpointSet, HttpClientError,
    HttpRequest, HttpResponse, RedirectUrl, TokenUrl,
};

use crate::demo::DemoClient;
use crate::http::Exchange;
use crate::{Ctx, Failure};

/// A `BasicClient` with the authorization and token endpoints set.
pub type Client =
    BasicClient<EndpointSet, EndpointNotSet, EndpointNotSet, EndpointNotSet, EndpointSet>;

/// A reqwest client (redirects disabled) that keeps every exchange.
#[derive(Debug, Clone)]
pub struct Recorder {
    client: reqwest::Client,
    log: Arc<Mutex<Vec<Exchange>>>,
}

impl Recorder {
    /// A new recorder.
    pub fn new() -> Result<Self, Failure> {
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(crate::http::REQUEST_TIMEOUT)
            .build()
            .map_err(|e| Failure::new(format!("cannot build an HTTP client: {e}")))?;
        Ok(Self {
            client,
            log: Arc::default(),
        })
    }

    /// The last exchange, if any.
    pub fn last(&self) -> Option<Exchange> {
        self.log
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .last()
            .cloned()
    }

    /// A failure naming `what`, with the last exchange attached.
    pub fn failure(&self, what: impl std::fmt::Display) -> Failure {
        match self.last() {
            Some(ex) => ex.failure(what),
            None => Failure::new(format!("{what} (no HTTP exchange recorded)")),
        }
    }
}

fn pairs(headers: &oauth2::http::HeaderMap) -> Vec<(String, String)> {
    headers
        .iter()
        .map(|(k, v)| {
            (
                k.as_str().to_owned(),
                String::from_utf8_lossy(v.as_bytes()).into_owned(),
            )
        })
        .collect()
}

impl<'c> AsyncHttpClient<'c> for Recorder {
    type Error = HttpClientError<reqwest::Error>;
    type Future = Pin<Box<dyn Future<Output = Result<HttpResponse, Self::Error>> + Send + 'c>>;

    fn call(&'c self, request: HttpRequest) -> Self::Future {
        Box::pin(async move {
            let mut exchange = Exchange {
                method: request.method().to_string(),
                url: request.uri().to_string(),
                request_headers: pairs(request.headers()),
                request_body: Some(String::from_utf8_lossy(request.body()).into_owned()),
                status: 0,
                headers: Vec::new(),
                body: String::new(),
            };
            let response = self.client.call(request).await;
            if let Ok(r) = &response {
                exchange.status = r.status().as_u16();
                exchange.headers = pairs(r.headers());
                exchange.body = String::from_utf8_lossy(r.body()).into_owned();
            }
            self.log
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .push(exchange);
            response
        })
    }
}

/// An `oauth2` client for `client` from the discovered metadata, with
/// `redirect_uri` (HTTP Basic authentication when it has a secret).
pub fn client(ctx: &Ctx, client: &DemoClient, redirect_uri: &str) -> Result<Client, Failure> {
    let bad = |what: &str, e: &dyn std::fmt::Display| Failure::new(format!("{what}: {e}"));
    let mut c = BasicClient::new(ClientId::new(client.id.to_owned()))
        .set_auth_uri(
            AuthUrl::new(ctx.meta.authorization_endpoint.clone())
                .map_err(|e| bad("authorization_endpoint", &e))?,
        )
        .set_token_uri(
            TokenUrl::new(ctx.meta.token_endpoint.clone())
                .map_err(|e| bad("token_endpoint", &e))?,
        )
        .set_redirect_uri(
            RedirectUrl::new(redirect_uri.to_owned()).map_err(|e| bad("redirect_uri", &e))?,
        );
    if let Some(secret) = client.secret {
        c = c.set_client_secret(ClientSecret::new(secret.to_owned()));
    }
    Ok(c)
}
