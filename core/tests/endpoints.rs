//! The endpoint table and `Server::handle`'s own answers, before any
//! endpoint runs: routes, methods (`405` with `Allow`), body size (`413`)
//! and `Server::body_plan`, the same for every adapter.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use tessera::{BodyPlan, CrossOrigin, Endpoint, HttpRequest, WELL_KNOWN_PATH};

#[tokio::test]
async fn routes_list_every_endpoint_at_its_path() {
    let f = fixture();
    let routes: Vec<_> = f
        .server
        .routes()
        .iter()
        .map(|r| (r.endpoint, r.path.as_str()))
        .collect();
    assert_eq!(
        routes,
        [
            (Endpoint::Metadata, WELL_KNOWN_PATH),
            (Endpoint::Token, "/token"),
            (Endpoint::Revocation, "/revoke"),
            (Endpoint::Introspection, "/introspect"),
            (Endpoint::PushedAuthorization, "/par"),
        ]
    );
    assert_eq!(f.server.endpoint_at("/token"), Some(Endpoint::Token));
    assert_eq!(f.server.endpoint_at("/authorize"), None);
    assert_eq!(f.server.authorization_path(), "/authorize");
}

#[tokio::test]
async fn other_methods_get_405_with_allow_rfc9110_15_5_6() {
    let f = fixture();
    for route in f.server.routes() {
        let wrong = if route.endpoint.methods().contains(&"POST") {
            "GET"
        } else {
            "POST"
        };
        let r = f
            .server
            .handle(route.endpoint, &HttpRequest::new(wrong))
            .await;
        assert_eq!(r.status, 405, "{}", route.endpoint);
        assert_eq!(
            r.header("allow"),
            Some(route.endpoint.methods().join(", ").as_str())
        );
        assert_eq!(r.header("cache-control"), Some("no-store"));
        let v: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
        assert_eq!(err(&v), "invalid_request");
    }
    // Methods are case-sensitive (RFC 9110 §9.1): `get` is not `GET`.
    let r = f
        .server
        .handle(Endpoint::Metadata, &HttpRequest::new("get"))
        .await;
    assert_eq!(r.status, 405);
    let r = f
        .server
        .handle(Endpoint::Metadata, &HttpRequest::new("GET"))
        .await;
    assert_eq!(r.status, 200);
}

#[tokio::test]
async fn bodies_over_the_limit_get_413_rfc9110_15_5_14() {
    let f = fixture();
    let max = f.server.config().max_body_bytes;
    let big = vec![b'a'; max + 1];
    for endpoint in [
        Endpoint::Token,
        Endpoint::Revocation,
        Endpoint::Introspection,
    ] {
        let request = HttpRequest::new("POST")
            .with_content_type(Some("application/x-www-form-urlencoded"))
            .with_body(&big);
        let r = f.server.handle(endpoint, &request).await;
        assert_eq!(r.status, 413, "{endpoint}");
        assert_eq!(r, f.server.body_too_large());
    }
    // The plan an adapter follows before reading: refuse what is announced
    // as too long (draining it unless the client waits for 100-continue).
    assert_eq!(
        f.server.body_plan(Some(&max.to_string()), false),
        BodyPlan::Read { max }
    );
    assert_eq!(f.server.body_plan(None, false), BodyPlan::Read { max });
    let over = (max + 1).to_string();
    match f.server.body_plan(Some(&over), false) {
        BodyPlan::Refuse {
            response, drain, ..
        } => {
            assert_eq!(response.status, 413);
            assert_eq!(drain, Some(max as u64 + 1));
        }
        other => panic!("{other:?}"),
    }
    match f.server.body_plan(Some(&over), true) {
        BodyPlan::Refuse { drain, .. } => assert_eq!(drain, None),
        other => panic!("{other:?}"),
    }
}

/// CORS (the Fetch standard's protocol) with `CrossOrigin::ClientEndpoints`:
/// a page of any origin may call what a browser app calls (metadata,
/// token, revocation, PAR) and read the answer, without credentials;
/// introspection, a resource server's back channel, answers no page.
#[tokio::test]
async fn browser_apps_may_call_the_client_endpoints_when_allowed() {
    let f = fixture_with(|b| b.cross_origin(CrossOrigin::ClientEndpoints));
    let origin = Some("https://spa.example");
    let header = |r: &tessera::HttpResponse, name: &str| r.header(name).map(str::to_owned);
    for route in f.server.routes() {
        let endpoint = route.endpoint;
        // The preflight: which method and headers a page may send.
        let preflight = f
            .server
            .handle(endpoint, &HttpRequest::new("OPTIONS").with_origin(origin))
            .await;
        // The request itself, from a page.
        let method = endpoint.methods()[0];
        let auth = basic("job", "job-secret");
        let request = HttpRequest::new(method)
            .with_content_type(Some("application/x-www-form-urlencoded"))
            .with_authorization(Some(&auth))
            .with_body(b"grant_type=client_credentials")
            .with_origin(origin);
        let answer = f.server.handle(endpoint, &request).await;
        if endpoint == Endpoint::Introspection {
            assert_eq!(preflight.status, 405, "{endpoint}");
            assert_eq!(header(&preflight, "access-control-allow-origin"), None);
            assert_eq!(header(&answer, "access-control-allow-origin"), None);
            continue;
        }
        assert_eq!(preflight.status, 204, "{endpoint}");
        assert_eq!(
            header(&preflight, "access-control-allow-origin").as_deref(),
            Some("*")
        );
        assert_eq!(
            header(&preflight, "access-control-allow-methods").as_deref(),
            Some(endpoint.methods().join(", ").as_str()),
            "{endpoint}"
        );
        let allowed = header(&preflight, "access-control-allow-headers").unwrap();
        for needed in [
            "Authorization",
            "Content-Type",
            "DPoP",
            "MCP-Protocol-Version",
        ] {
            assert!(allowed.contains(needed), "{endpoint}: {allowed}");
        }
        // Never with credentials: no cookie is taken here.
        assert_eq!(header(&preflight, "access-control-allow-credentials"), None);
        assert_eq!(
            header(&answer, "access-control-allow-origin").as_deref(),
            Some("*"),
            "{endpoint}"
        );
        let exposed = header(&answer, "access-control-expose-headers").unwrap();
        assert!(exposed.contains("WWW-Authenticate") && exposed.contains("DPoP-Nonce"));
        // Without `Origin` (not a page's fetch): no CORS headers but on the
        // documents (the same for every reader), and OPTIONS is a method
        // like any other.
        let plain = f.server.handle(endpoint, &request.with_origin(None)).await;
        let expected = (endpoint == Endpoint::Metadata).then_some("*");
        assert_eq!(
            header(&plain, "access-control-allow-origin").as_deref(),
            expected,
            "{endpoint}"
        );
        assert_eq!(
            f.server
                .handle(endpoint, &HttpRequest::new("OPTIONS"))
                .await
                .status,
            405
        );
    }
}

/// By default only the public documents answer pages: a browser-based
/// client can discover the server, and a server reachable only from the
/// user's machine or network is not callable by every website the user
/// visits (`CrossOrigin::ClientEndpoints` is an opt-in).
#[tokio::test]
async fn by_default_only_the_documents_answer_pages() {
    let api = tessera::ResourceIndicator::new("https://as.example/api").unwrap();
    let f = fixture_with(|b| {
        b.enable_device_grant()
            .enable_dynamic_registration(tessera::RegistrationPolicy::open())
            .protected_resource(tessera::ProtectedResource::new(api).unwrap())
    });
    let origin = Some("https://spa.example");
    let mut documents = 0;
    for route in f.server.routes() {
        let endpoint = route.endpoint;
        let preflight = f
            .server
            .handle(endpoint, &HttpRequest::new("OPTIONS").with_origin(origin))
            .await;
        if endpoint.methods().contains(&"GET") {
            // A document: `*` for everyone, even without `Origin`.
            documents += 1;
            let answer = f.server.handle(endpoint, &HttpRequest::new("GET")).await;
            assert_eq!(answer.status, 200, "{endpoint}");
            assert_eq!(
                answer.header("access-control-allow-origin"),
                Some("*"),
                "{endpoint}"
            );
            assert_eq!(preflight.status, 204, "{endpoint}");
            assert_eq!(
                preflight.header("access-control-allow-methods"),
                Some("GET, HEAD")
            );
        } else {
            // Token, revocation, introspection, PAR, device authorization,
            // registration: no page reads them.
            assert_eq!(preflight.status, 405, "{endpoint}");
            let answer = f
                .server
                .handle(
                    endpoint,
                    &HttpRequest::form_post("", None).with_origin(origin),
                )
                .await;
            assert_eq!(
                answer.header("access-control-allow-origin"),
                None,
                "{endpoint}"
            );
        }
    }
    assert_eq!(documents, 2, "the metadata and the protected resource's");
    let routes = f.server.routes();
    for endpoint in [Endpoint::DeviceAuthorization, Endpoint::Registration] {
        assert!(
            routes.iter().any(|r| r.endpoint == endpoint),
            "{endpoint} is served"
        );
    }
}

/// `CrossOrigin::Off` (an embedder whose own middleware answers CORS): no
/// endpoint sends a CORS header, so none is sent twice.
#[tokio::test]
async fn cross_origin_calls_can_be_turned_off() {
    let f = fixture_with(|b| b.cross_origin(CrossOrigin::Off));
    let origin = Some("https://spa.example");
    let preflight = f
        .server
        .handle(
            Endpoint::Metadata,
            &HttpRequest::new("OPTIONS").with_origin(origin),
        )
        .await;
    assert_eq!(preflight.status, 405);
    let answer = f
        .server
        .handle(
            Endpoint::Metadata,
            &HttpRequest::new("GET").with_origin(origin),
        )
        .await;
    assert_eq!(answer.status, 200);
    assert_eq!(answer.header("access-control-allow-origin"), None);
}

/// A form POST to `endpoint` with `query` in its URI.
async fn post_with_query(
    f: &Fixture,
    endpoint: Endpoint,
    query: &str,
    body: &str,
    auth: Option<&str>,
) -> (u16, serde_json::Value) {
    let r = f
        .server
        .handle(
            endpoint,
            &HttpRequest::form_post(body, auth).with_query(Some(query)),
        )
        .await;
    (
        r.status,
        serde_json::from_slice(&r.body).unwrap_or_default(),
    )
}

/// RFC 6749 §3.2: a back-channel endpoint's URI may carry a query, and an
/// unrecognized parameter MUST be ignored; nothing is read from the query
/// (a `grant_type` there does not count). A secret in it is refused with
/// `invalid_request` naming it (§2.3.1: client credentials MUST NOT be in
/// the request URI), at every endpoint that reads a form.
#[tokio::test]
async fn a_query_is_ignored_but_a_secret_in_it_is_refused_rfc6749_3_2() {
    let f = fixture();
    let job = basic("job", "job-secret");
    let job = Some(job.as_str());
    let cc = "grant_type=client_credentials";
    for query in [
        "utm_source=x",
        "tenant=a&grant_type=password",
        "scope=profile",
        "%zz&=",
    ] {
        let (status, v) = post_with_query(&f, Endpoint::Token, query, cc, job).await;
        assert_eq!(status, 200, "{query}: {v}");
        assert_eq!(
            v["scope"], "photos.read",
            "{query}: the query's scope is not read"
        );
    }
    // Nothing comes from the query: a grant type only there is missing.
    let (status, v) = post_with_query(
        &f,
        Endpoint::Token,
        "grant_type=client_credentials",
        "",
        job,
    )
    .await;
    assert_eq!((status, err(&v)), (400, "invalid_request"));
    for endpoint in [
        Endpoint::Token,
        Endpoint::Revocation,
        Endpoint::Introspection,
        Endpoint::PushedAuthorization,
    ] {
        for name in tessera::SECRET_PARAMETERS {
            let query = format!("a=1&{name}=x");
            let (status, v) = post_with_query(&f, endpoint, &query, cc, job).await;
            assert_eq!(
                (status, err(&v)),
                (400, "invalid_request"),
                "{endpoint}: {name}"
            );
            let text = v["error_description"].as_str().unwrap_or_default();
            assert!(text.contains(&format!("`{name}`")), "{endpoint}: {text}");
        }
        // Whatever the value: too long to be a parameter, or not UTF-8.
        let long = format!("client_assertion={}", "a".repeat(3000));
        for query in [long.as_str(), "client_secret=s3cret%FF", "access_token=x"] {
            let (status, v) = post_with_query(&f, endpoint, query, cc, job).await;
            assert_eq!(
                (status, err(&v)),
                (400, "invalid_request"),
                "{endpoint}: {query:.40}"
            );
        }
        // An empty value is an omitted one (§3.2): nothing to refuse.
        let (_, v) = post_with_query(&f, endpoint, "client_secret=", "token=x", job).await;
        let text = v["error_description"].as_str().unwrap_or_default();
        assert!(!text.contains("query"), "{endpoint}: {text}");
    }
}
