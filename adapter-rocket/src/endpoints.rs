//! The core's endpoint table as rocket routes: every route the core lists,
//! for every method, each request translated into a [`tessera::HttpRequest`]
//! and the core's answer back. No path, method or protocol decision is made
//! here.

use std::sync::Arc;

use rocket::data::Data;
use rocket::http::{Method, Status};
use rocket::request::Request;
use rocket::route::{self, Handler, Route};
use tessera::{Endpoint, HttpRequest, Server};
use tracing::Instrument;

use crate::body::OAuthRequest;
use crate::response::TesseraResponse;

/// Every method rocket can route. The core answers each one (a `405` for
/// the wrong ones), so none falls through to rocket's `404`.
const ALL_METHODS: [Method; 9] = [
    Method::Get,
    Method::Head,
    Method::Post,
    Method::Put,
    Method::Delete,
    Method::Options,
    Method::Patch,
    Method::Trace,
    Method::Connect,
];

#[derive(Clone)]
struct EndpointHandler {
    server: Server,
    endpoint: Endpoint,
    /// The exact path served: rocket also routes `/token/` and `//token`
    /// here, which are not the endpoint (and not where axum answers).
    path: Arc<str>,
}

impl EndpointHandler {
    async fn answer(&self, req: &Request<'_>, data: Data<'_>) -> tessera::HttpResponse {
        // DEBUG, as in tessera-axum: cheaper than the event it frames.
        let span = tracing::debug_span!(
            "oauth",
            endpoint = self.endpoint.name(),
            method = %req.method(),
        );
        let work = async {
            let request = if self.endpoint.reads_body() {
                match OAuthRequest::read(req, data, &self.server).await {
                    Ok(request) => request,
                    Err(response) => {
                        // A page reads this answer too (CORS), as the core's.
                        let mut response = response.into_inner();
                        let origin = crate::body::header_text(req, "Origin");
                        self.server.add_cross_origin_headers(
                            self.endpoint,
                            origin.as_deref(),
                            &mut response,
                        );
                        return response;
                    }
                }
            } else {
                OAuthRequest::without_body(req)
            };
            // Rocket sends no body in answer to HEAD.
            let http: HttpRequest<'_> = request.as_http();
            self.server.handle(self.endpoint, &http).await
        };
        if span.is_disabled() {
            work.await
        } else {
            work.instrument(span).await
        }
    }
}

#[rocket::async_trait]
impl Handler for EndpointHandler {
    async fn handle<'r>(&self, req: &'r Request<'_>, data: Data<'r>) -> route::Outcome<'r> {
        if req.uri().path().as_str() != &*self.path {
            return route::Outcome::forward(data, Status::NotFound);
        }
        route::Outcome::from(req, TesseraResponse(self.answer(req, data).await))
    }
}

/// The routes of `server`'s endpoint table, to mount at `/`, each answering
/// its exact path only (not `/token/` or `//token`, which rocket would route
/// there too). The paths were checked when the server was built.
pub(crate) fn routes(server: &Server) -> Vec<Route> {
    let mut routes = Vec::new();
    for route in server.routes() {
        let handler = EndpointHandler {
            server: server.clone(),
            endpoint: route.endpoint,
            path: route.path.as_str().into(),
        };
        for method in ALL_METHODS {
            let mut rocket_route = Route::new(method, &route.path, handler.clone());
            rocket_route.name = Some(format!("tessera: {}", route.endpoint.name()).into());
            routes.push(rocket_route);
        }
    }
    routes
}
