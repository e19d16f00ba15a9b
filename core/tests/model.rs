//! Model-based test (issue 11): proptest drives random sequences of
//! operations (authorize with or without a login, consent allowed or denied,
//! code exchange and replay, refresh and reuse of a rotated token,
//! revocation by the owning client or another, the clock moving past code,
//! access-token and refresh expiry, introspection) against the real
//! `Server` on the memory store, and against a small reference model of
//! which codes and tokens live. After every step the tokens the server
//! accepts (access tokens through `verify_bearer`, refresh tokens through
//! introspection) are exactly the model's, and each token request succeeds
//! exactly when the model says it should.
//!
//! The rules the model encodes:
//! - a code lives 60 s and is single use; presenting a taken code again
//!   revokes every token of its grant (RFC 6749 §4.1.2); a code taken by a
//!   request that then fails (another client, a wrong verifier) is used up;
//! - access tokens live 1 h; refresh tokens 30 days, renewed on rotation but
//!   never past the family's end, 90 days after the code exchange;
//! - a refresh rotates: the old refresh token is retired, the grant's earlier
//!   access tokens stay live; presenting a retired refresh token (by any
//!   client) while it would still be live revokes the whole grant (RFC 9700
//!   §4.14.2); a refresh token presented by another client is refused and
//!   changes nothing;
//! - revoking an access token revokes only it; revoking the current refresh
//!   token revokes its grant; a client revokes only its own tokens, anything
//!   else changes nothing (RFC 7009 §2.1, §2.2);
//! - a client introspects only its own tokens; the resource server all.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use base64::Engine;
use proptest::prelude::*;
use proptest::sample::Index;
use tessera::{
    AuthMethod, AuthorizeOutcome, Client, ClientId, CodeChallenge, Decision, Endpoint, FixedClock,
    HttpRequest, RedirectUri, Scope, ScopeToken, SecretHash, Server, Subject,
};
use tessera_memory::MemoryStore;
use time::{Duration, OffsetDateTime};

const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
const WRONG_VERIFIER: &str = "wrong-verifier-wrong-verifier-wrong-verifier-0";
/// The clients that obtain tokens: (id, secret).
const CLIENTS: [(&str, &str); 2] = [("shop", "shop-secret"), ("other", "other-secret")];
/// The resource server, which may introspect every token.
const RS: (&str, &str) = ("rs", "rs-secret");

const CODE_LIFE: i64 = 60;
const ACCESS_LIFE: i64 = 3600;
const REFRESH_LIFE: i64 = 30 * 86_400;
const FAMILY_LIFE: i64 = 90 * 86_400;

/// How far the clock may move in one step, in seconds: around each lifetime.
const STEPS: [i64; 9] = [
    1,
    30,
    61,
    30 * 60,
    3601,
    86_400,
    29 * 86_400,
    31 * 86_400,
    60 * 86_400,
];

#[derive(Debug, Clone)]
enum Op {
    /// An authorization request by `client`, with a login first or by an
    /// owner already signed in, then consent allowed or denied.
    Authorize {
        client: usize,
        login: bool,
        allow: bool,
    },
    /// A code exchange (or replay) of a code by `client`.
    Exchange {
        code: Index,
        client: usize,
        good_verifier: bool,
    },
    /// A refresh (or reuse of a rotated token) by `client`.
    Refresh { token: Index, client: usize },
    /// Revocation of an access or refresh token by `client`.
    Revoke {
        token: Index,
        refresh: bool,
        client: usize,
    },
    /// Introspection of a token by a client that sees only its own.
    Introspect {
        token: Index,
        refresh: bool,
        client: usize,
    },
    /// The clock moves on.
    Advance(usize),
    /// 29 days pass, then a live family is refreshed by its client: what
    /// makes families reach their end (run as `Advance` + `RefreshCurrent`).
    Age { grant: Index },
    /// A current refresh token refreshed by its own client.
    RefreshCurrent { grant: Index },
}

/// `STEPS[AGE]` is 29 days: within a refresh token's 30.
const AGE: usize = 6;

fn op() -> impl Strategy<Value = Op> {
    let client = 0..CLIENTS.len();
    prop_oneof![
        3 => (client.clone(), any::<bool>(), prop::bool::weighted(0.85))
            .prop_map(|(client, login, allow)| Op::Authorize { client, login, allow }),
        4 => (any::<Index>(), prop::bool::weighted(0.8), prop::bool::weighted(0.85))
            .prop_map(|(code, own, good_verifier)| Op::Exchange {
                code,
                // The code's own client (resolved when run) or the other.
                client: usize::from(!own),
                good_verifier,
            }),
        4 => (any::<Index>(), prop::bool::weighted(0.85))
            .prop_map(|(token, own)| Op::Refresh { token, client: usize::from(!own) }),
        2 => (any::<Index>(), any::<bool>(), prop::bool::weighted(0.75))
            .prop_map(|(token, refresh, own)| Op::Revoke { token, refresh, client: usize::from(!own) }),
        1 => (any::<Index>(), any::<bool>(), client)
            .prop_map(|(token, refresh, client)| Op::Introspect { token, refresh, client }),
        3 => (0..STEPS.len()).prop_map(Op::Advance),
        4 => any::<Index>().prop_map(|grant| Op::Age { grant }),
    ]
}

// ---------------------------------------------------------------- the model

#[derive(Debug)]
struct MGrant {
    client: usize,
    revoked: bool,
    /// The current refresh token (an index into `refresh`).
    current: Option<usize>,
    family_end: i64,
}

#[derive(Debug)]
struct MCode {
    text: String,
    grant: usize,
    expires: i64,
    taken: bool,
}

#[derive(Debug)]
struct MAccess {
    text: String,
    grant: usize,
    expires: i64,
    revoked: bool,
}

#[derive(Debug)]
struct MRefresh {
    text: String,
    grant: usize,
    expires: i64,
}

#[derive(Debug, Default)]
struct Model {
    now: i64,
    grants: Vec<MGrant>,
    codes: Vec<MCode>,
    access: Vec<MAccess>,
    refresh: Vec<MRefresh>,
}

impl Model {
    fn access_live(&self, i: usize) -> bool {
        let a = &self.access[i];
        !a.revoked && !self.grants[a.grant].revoked && self.now < a.expires
    }

    /// Whether refresh token `i` is its grant's current, live one.
    fn refresh_current(&self, i: usize) -> bool {
        let r = &self.refresh[i];
        let g = &self.grants[r.grant];
        !g.revoked && g.current == Some(i) && self.now < r.expires
    }

    /// Whether refresh token `i` was rotated away and would still be live:
    /// presenting it is reuse.
    fn refresh_retired(&self, i: usize) -> bool {
        let r = &self.refresh[i];
        let g = &self.grants[r.grant];
        !g.revoked && g.current != Some(i) && self.now < r.expires
    }
}

// ----------------------------------------------------------- the real thing

struct Real {
    server: Server,
    clock: Arc<FixedClock>,
}

fn basic(id: &str, secret: &str) -> String {
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{id}:{secret}"))
    )
}

fn real() -> Real {
    let client = |(id, secret): (&str, &str)| {
        Client::confidential(ClientId::new(id).unwrap(), id, SecretHash::of(secret))
            .with_auth_methods([AuthMethod::ClientSecretBasic])
            .with_redirect_uri(RedirectUri::new(format!("https://{id}.example/cb")).unwrap())
            .with_grant_types(["authorization_code", "refresh_token"])
            .with_scope(Scope::parse("read").unwrap())
    };
    let rs = Client::confidential(ClientId::new(RS.0).unwrap(), "RS", SecretHash::of(RS.1))
        .with_introspect_any_token(true);
    let clients = [client(CLIENTS[0]), client(CLIENTS[1]), rs];
    let clock = Arc::new(FixedClock::new(
        OffsetDateTime::UNIX_EPOCH + Duration::days(20_000),
    ));
    let server = Server::builder()
        .issuer("https://as.example")
        .store(Arc::new(MemoryStore::with_clients(clients)))
        .scope(ScopeToken::new("read").unwrap(), "Read")
        .clock(clock.clone())
        .build()
        .unwrap();
    Real { server, clock }
}

fn query_param(location: &str, name: &str) -> Option<String> {
    let query = location.split_once('?')?.1;
    url::form_urlencoded::parse(query.as_bytes())
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}

impl Real {
    /// Runs an authorization to its redirect; the code, if allowed.
    async fn authorize(&self, client: &str, login: bool, allow: bool) -> Option<String> {
        let owner = Subject::new("alice");
        let query = format!(
            "response_type=code&client_id={client}&state=s&code_challenge={}&code_challenge_method=S256",
            CodeChallenge::s256(VERIFIER)
        );
        let s = &self.server;
        let consent = if login {
            let AuthorizeOutcome::Login(p) = s.authorize(&query, None).await else {
                panic!("expected a login")
            };
            s.resume(&p.handle, &owner).await
        } else {
            s.authorize(&query, Some(&owner)).await
        };
        let AuthorizeOutcome::Consent(p) = consent else {
            panic!("expected consent, got {consent:?}")
        };
        let decision = if allow {
            Decision::Allow
        } else {
            Decision::Deny
        };
        let AuthorizeOutcome::Redirect(r) = s.decide(&p.handle, &owner, decision).await else {
            panic!("expected a redirect")
        };
        let code = query_param(r.location(), "code");
        assert_eq!(code.is_some(), allow, "{}", r.location());
        if !allow {
            assert_eq!(
                query_param(r.location(), "error").as_deref(),
                Some("access_denied")
            );
        }
        code
    }

    async fn post(
        &self,
        endpoint: Endpoint,
        body: &str,
        (id, secret): (&str, &str),
    ) -> (u16, serde_json::Value) {
        let auth = basic(id, secret);
        let r = self
            .server
            .handle(endpoint, &HttpRequest::form_post(body, Some(&auth)))
            .await;
        (r.status, serde_json::from_slice(&r.body).unwrap())
    }

    /// A token request: `(access, refresh)` on success.
    async fn token(&self, body: &str, client: usize) -> Option<(String, String)> {
        let (status, json) = self.post(Endpoint::Token, body, CLIENTS[client]).await;
        if status != 200 {
            assert_eq!(status, 400, "{json}");
            assert!(
                ["invalid_grant", "invalid_scope"].contains(&json["error"].as_str().unwrap()),
                "{json}"
            );
            return None;
        }
        let access = json["access_token"].as_str().unwrap().to_owned();
        let refresh = json["refresh_token"].as_str().unwrap().to_owned();
        Some((access, refresh))
    }

    async fn introspect(&self, token: &str, client: (&str, &str)) -> bool {
        let body = url::form_urlencoded::Serializer::new(String::new())
            .append_pair("token", token)
            .finish();
        let (status, json) = self.post(Endpoint::Introspection, &body, client).await;
        assert_eq!(status, 200, "{json}");
        json["active"].as_bool().unwrap()
    }

    async fn bearer(&self, token: &str) -> bool {
        let header = format!("Bearer {token}");
        self.server.verify_bearer(Some(&header), None).await.is_ok()
    }
}

// ------------------------------------------------------------------ the run

async fn run(ops: Vec<Op>) {
    let real = real();
    let mut m = Model::default();
    let ops: Vec<Op> = ops
        .into_iter()
        .flat_map(|op| match op {
            Op::Age { grant } => vec![Op::Advance(AGE), Op::RefreshCurrent { grant }],
            op => vec![op],
        })
        .collect();
    for (step, op) in ops.iter().enumerate() {
        match op {
            Op::Authorize {
                client,
                login,
                allow,
            } => {
                let code = real.authorize(CLIENTS[*client].0, *login, *allow).await;
                if let Some(text) = code {
                    m.grants.push(MGrant {
                        client: *client,
                        revoked: false,
                        current: None,
                        family_end: 0,
                    });
                    m.codes.push(MCode {
                        text,
                        grant: m.grants.len() - 1,
                        expires: m.now + CODE_LIFE,
                        taken: false,
                    });
                }
            }
            Op::Exchange {
                code,
                client,
                good_verifier,
            } => {
                if m.codes.is_empty() {
                    continue;
                }
                let i = code.index(m.codes.len());
                let g = m.codes[i].grant;
                // `client` 0 is the code's own client, 1 the other one.
                let client = (m.grants[g].client + client) % CLIENTS.len();
                let verifier = if *good_verifier {
                    VERIFIER
                } else {
                    WRONG_VERIFIER
                };
                let body = format!(
                    "grant_type=authorization_code&code={}&code_verifier={verifier}",
                    m.codes[i].text
                );
                let got = real.token(&body, client).await;
                let c = &mut m.codes[i];
                let expect = if c.taken {
                    // RFC 6749 §4.1.2: the replay revokes the grant.
                    m.grants[g].revoked = true;
                    false
                } else if m.now < c.expires {
                    c.taken = true;
                    client == m.grants[g].client && *good_verifier
                } else {
                    false
                };
                assert_eq!(got.is_some(), expect, "step {step}: {op:?}");
                if let Some((access, refresh)) = got {
                    m.grants[g].family_end = m.now + FAMILY_LIFE;
                    m.access.push(MAccess {
                        text: access,
                        grant: g,
                        expires: m.now + ACCESS_LIFE,
                        revoked: false,
                    });
                    m.refresh.push(MRefresh {
                        text: refresh,
                        grant: g,
                        expires: m.now + REFRESH_LIFE.min(FAMILY_LIFE),
                    });
                    m.grants[g].current = Some(m.refresh.len() - 1);
                }
            }
            Op::Refresh { .. } | Op::RefreshCurrent { .. } => {
                let (i, client) = match op {
                    Op::Refresh { token, client } => {
                        if m.refresh.is_empty() {
                            continue;
                        }
                        (token.index(m.refresh.len()), *client)
                    }
                    Op::RefreshCurrent { grant } => {
                        let live: Vec<usize> = (0..m.refresh.len())
                            .filter(|&i| m.refresh_current(i))
                            .collect();
                        if live.is_empty() {
                            continue;
                        }
                        (live[grant.index(live.len())], 0)
                    }
                    _ => unreachable!(),
                };
                let g = m.refresh[i].grant;
                let client = (m.grants[g].client + client) % CLIENTS.len();
                let body = format!(
                    "grant_type=refresh_token&refresh_token={}",
                    m.refresh[i].text
                );
                let current = m.refresh_current(i);
                let retired = m.refresh_retired(i);
                let got = real.token(&body, client).await;
                let expect = current && client == m.grants[g].client;
                assert_eq!(got.is_some(), expect, "step {step}: {op:?}");
                if retired {
                    // RFC 9700 §4.14.2: reuse revokes the family.
                    m.grants[g].revoked = true;
                }
                if let Some((access, refresh)) = got {
                    m.access.push(MAccess {
                        text: access,
                        grant: g,
                        expires: m.now + ACCESS_LIFE,
                        revoked: false,
                    });
                    m.refresh.push(MRefresh {
                        text: refresh,
                        grant: g,
                        expires: (m.now + REFRESH_LIFE).min(m.grants[g].family_end),
                    });
                    m.grants[g].current = Some(m.refresh.len() - 1);
                }
            }
            Op::Revoke {
                token,
                refresh,
                client,
            } => {
                let (text, g, live) = if *refresh {
                    if m.refresh.is_empty() {
                        continue;
                    }
                    let i = token.index(m.refresh.len());
                    (
                        m.refresh[i].text.clone(),
                        m.refresh[i].grant,
                        m.refresh_current(i),
                    )
                } else {
                    if m.access.is_empty() {
                        continue;
                    }
                    let i = token.index(m.access.len());
                    (
                        m.access[i].text.clone(),
                        m.access[i].grant,
                        m.access_live(i),
                    )
                };
                let client = (m.grants[g].client + client) % CLIENTS.len();
                let body = url::form_urlencoded::Serializer::new(String::new())
                    .append_pair("token", &text)
                    .finish();
                let (status, json) = real
                    .post(Endpoint::Revocation, &body, CLIENTS[client])
                    .await;
                // RFC 7009 §2.2: 200 whatever the token.
                assert_eq!(status, 200, "step {step}: {op:?}: {json}");
                if live && client == m.grants[g].client {
                    if *refresh {
                        m.grants[g].revoked = true;
                    } else {
                        let i = token.index(m.access.len());
                        m.access[i].revoked = true;
                    }
                }
            }
            Op::Introspect {
                token,
                refresh,
                client,
            } => {
                let (text, g, live) = if *refresh {
                    if m.refresh.is_empty() {
                        continue;
                    }
                    let i = token.index(m.refresh.len());
                    (
                        m.refresh[i].text.clone(),
                        m.refresh[i].grant,
                        m.refresh_current(i),
                    )
                } else {
                    if m.access.is_empty() {
                        continue;
                    }
                    let i = token.index(m.access.len());
                    (
                        m.access[i].text.clone(),
                        m.access[i].grant,
                        m.access_live(i),
                    )
                };
                let active = real.introspect(&text, CLIENTS[*client]).await;
                assert_eq!(
                    active,
                    live && *client == m.grants[g].client,
                    "step {step}: {op:?}"
                );
            }
            Op::Age { .. } => unreachable!("expanded above"),
            Op::Advance(i) => {
                m.now += STEPS[*i];
                real.clock.advance(Duration::seconds(STEPS[*i]));
            }
        }
        // After every step: the server accepts exactly the model's tokens.
        for i in 0..m.access.len() {
            assert_eq!(
                real.bearer(&m.access[i].text).await,
                m.access_live(i),
                "step {step} ({op:?}): access token {i} of grant {}",
                m.access[i].grant
            );
        }
        for i in 0..m.refresh.len() {
            assert_eq!(
                real.introspect(&m.refresh[i].text, RS).await,
                m.refresh_current(i),
                "step {step} ({op:?}): refresh token {i} of grant {}",
                m.refresh[i].grant
            );
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 256,
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn server_accepts_exactly_the_models_tokens(ops in prop::collection::vec(op(), 1..=30)) {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap()
            .block_on(run(ops));
    }
}
