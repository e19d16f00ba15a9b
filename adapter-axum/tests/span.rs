//! The per-request `oauth` span is at DEBUG (as tower-http's `TraceLayer`):
//! a subscriber at DEBUG sees it with the endpoint and the method; one at
//! INFO, what deployments run, pays for no span at all.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use axum::body::Body;
use axum::http::Request;
use tessera::{ScopeToken, Server};
use tessera_memory::MemoryStore;
use tower::ServiceExt;
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Level, Metadata, Subscriber};

/// Records every span it is asked to create: name and fields as text.
struct Spans {
    max: Level,
    seen: Arc<Mutex<Vec<String>>>,
    next: AtomicU64,
}

struct Fields(String);

impl Visit for Fields {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        self.0.push_str(&format!(" {}={:?}", field.name(), value));
    }
}

impl Subscriber for Spans {
    fn enabled(&self, metadata: &Metadata<'_>) -> bool {
        *metadata.level() <= self.max
    }
    fn new_span(&self, span: &Attributes<'_>) -> Id {
        let mut fields = Fields(span.metadata().name().to_owned());
        span.record(&mut fields);
        self.seen.lock().unwrap().push(fields.0);
        Id::from_u64(self.next.fetch_add(1, Ordering::Relaxed) + 1)
    }
    fn record(&self, _: &Id, _: &Record<'_>) {}
    fn record_follows_from(&self, _: &Id, _: &Id) {}
    fn event(&self, _: &Event<'_>) {}
    fn enter(&self, _: &Id) {}
    fn exit(&self, _: &Id) {}
}

/// The spans one `GET /.well-known/oauth-authorization-server` makes
/// under a subscriber enabled up to `max`.
fn spans_at(max: Level) -> Vec<String> {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let subscriber = Spans {
        max,
        seen: Arc::clone(&seen),
        next: AtomicU64::new(0),
    };
    let server = Server::builder()
        .issuer("https://as.example")
        .store(Arc::new(MemoryStore::new()))
        .scope(ScopeToken::new("photos.read").unwrap(), "See your photos")
        .build()
        .unwrap();
    let app = tessera_axum::router::<()>(server);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    tracing::subscriber::with_default(subscriber, || {
        let request = Request::get("/.well-known/oauth-authorization-server")
            .body(Body::empty())
            .unwrap();
        let response = runtime.block_on(app.oneshot(request)).unwrap();
        assert_eq!(response.status(), 200);
    });
    std::mem::take(&mut *seen.lock().unwrap())
}

#[test]
fn the_oauth_span_is_debug_level() {
    let debug = spans_at(Level::DEBUG);
    assert!(
        debug
            .iter()
            .any(|s| s == "oauth endpoint=\"metadata\" method=GET"),
        "{debug:?}"
    );
    let info = spans_at(Level::INFO);
    assert!(!info.iter().any(|s| s.starts_with("oauth")), "{info:?}");
}
