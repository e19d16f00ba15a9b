//! The authorization endpoint (RFC 6749 §4.1.1, §4.1.2): validating the
//! request, and the outcomes an embedder turns into pages or redirects.

use std::sync::Arc;

use crate::client::{Client, GrantType};
use crate::config::{Config, PkcePolicy};
use crate::error::{ErrorCode, OAuthError};
use crate::grant::resolve_scope;
use crate::http::HttpResponse;
use crate::params::{Flaws, Params};
use crate::pkce::CodeChallenge;
use crate::redirect::RedirectUri;
use crate::scope::Scope;
use crate::storage::PendingAuthorization;

/// Where an authorization response goes: a verified redirect URI, the
/// client's `state` and the issuer (RFC 9207).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResponseTarget {
    /// The verified redirect URI.
    pub redirect_uri: String,
    /// The client's `state`, echoed exactly.
    pub state: Option<String>,
    /// The issuer, sent as `iss`.
    pub issuer: String,
}

impl ResponseTarget {
    /// The redirect carrying a code (RFC 6749 §4.1.2).
    pub fn code(&self, code: &str) -> AuthorizationRedirect {
        self.with(&[("code", code)])
    }

    /// The redirect carrying an error (RFC 6749 §4.1.2.1).
    pub fn error(&self, error: &OAuthError) -> AuthorizationRedirect {
        let description = error.description_text();
        let mut pairs = vec![("error", error.code.as_str())];
        if let Some(d) = &description {
            pairs.push(("error_description", d));
        }
        self.with(&pairs)
    }

    fn with(&self, pairs: &[(&str, &str)]) -> AuthorizationRedirect {
        redirect(
            &self.redirect_uri,
            self.state.as_deref(),
            &self.issuer,
            pairs,
        )
    }
}

/// The redirect carrying a code (RFC 6749 §4.1.2) from borrowed parts:
/// what [`ResponseTarget::code`] answers, without the target's copies.
pub(crate) fn code_redirect(
    redirect_uri: &str,
    state: Option<&str>,
    issuer: &str,
    code: &str,
) -> AuthorizationRedirect {
    redirect(redirect_uri, state, issuer, &[("code", code)])
}

/// The authorization response at `redirect_uri`: `pairs`, then `state`
/// and `iss` (RFC 9207).
fn redirect(
    redirect_uri: &str,
    state: Option<&str>,
    issuer: &str,
    pairs: &[(&str, &str)],
) -> AuthorizationRedirect {
    // One buffer, sized for the usual response, that the query is appended to.
    let mut location = String::with_capacity(redirect_uri.len() + 192);
    location.push_str(redirect_uri);
    let mut sep = if redirect_uri.contains('?') { '&' } else { '?' };
    let state = state.map(|state| ("state", state));
    let iss = ("iss", issuer);
    for (name, value) in pairs.iter().copied().chain(state).chain([iss]) {
        // The names are ours, and need no encoding.
        location.push(sep);
        location.push_str(name);
        location.push('=');
        append_form_encoded(&mut location, value);
        sep = '&';
    }
    AuthorizationRedirect { location }
}

/// The bytes form encoding leaves as they are: ASCII letters and digits
/// and `*-._`. A table, so that a random code's letters, digits, `-` and
/// `_` take one predictable branch each, not a chain of mispredicted ones.
const FORM_SAFE: [bool; 256] = {
    let mut table = [false; 256];
    let mut b = 0;
    while b < 256 {
        let c = b as u8;
        table[b] = c.is_ascii_alphanumeric() || matches!(c, b'*' | b'-' | b'.' | b'_');
        b += 1;
    }
    table
};

/// Appends `value` form-encoded (RFC 6749 Appendix B) by
/// `form_urlencoded::byte_serialize`. A value that needs no escape (a code,
/// the usual `state`) is found through [`FORM_SAFE`] and copied whole.
fn append_form_encoded(out: &mut String, value: &str) {
    if value.bytes().all(|b| FORM_SAFE[usize::from(b)]) {
        out.push_str(value);
    } else {
        out.extend(url::form_urlencoded::byte_serialize(value.as_bytes()));
    }
}

/// A redirect back to the client with the authorization response.
#[derive(Clone, PartialEq, Eq)]
pub struct AuthorizationRedirect {
    location: String,
}

impl std::fmt::Debug for AuthorizationRedirect {
    /// The location may carry a code: only the part before the query is shown.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let base = self.location.split('?').next().unwrap_or_default();
        write!(f, "AuthorizationRedirect({base}?..)")
    }
}

impl AuthorizationRedirect {
    /// The `Location` header value.
    pub fn location(&self) -> &str {
        &self.location
    }

    /// As an HTTP response (`303 See Other`).
    pub fn to_http(&self) -> HttpResponse {
        HttpResponse::redirect(self.location.clone())
    }
}

/// What the embedder's login or consent page needs to show.
#[derive(Clone, PartialEq, Eq)]
pub struct Prompt {
    /// The handle to carry in the page's form (hidden input); it refers to the
    /// validated request kept in storage.
    pub handle: String,
    /// The requesting client.
    pub client: Arc<Client>,
    /// The requested scope.
    pub scope: Scope,
    /// The resource the grant is for (RFC 8707: its tokens' audience), the
    /// requested one or the default; `None` when the server names none.
    /// Show it when the server has several (an API, an MCP server): the
    /// owner consents to a client at a resource.
    pub resource: Option<crate::resource::ResourceIndicator>,
    /// Where the browser goes after the decision, one of the client's
    /// registered redirect URIs (checked already). Show its host: the name
    /// a client gives is its own claim, the host is where the code goes
    /// (MCP authorization 2025-11-25, client ID metadata documents: the
    /// server MUST display the redirect URI's hostname), and warn when it
    /// is a loopback address, which any app on the user's machine can
    /// listen on ([`Prompt::redirect_host`]).
    pub redirect_uri: String,
    /// The configured words for scope tokens, shared.
    pub(crate) words: crate::scope::ScopeWords,
}

impl Prompt {
    /// Each token of [`scope`](Self::scope) with its description
    /// ([`Config::scopes`](crate::Config::scopes); the token itself where
    /// none is configured), for listing in words. Lent, not copied.
    pub fn scope_descriptions(&self) -> impl Iterator<Item = (&str, &str)> + '_ {
        self.words.describe(&self.scope)
    }

    /// The host of [`redirect_uri`](Self::redirect_uri) as a browser reads
    /// it (without port; brackets for IPv6; `127.0.0.1` for `127.1` or
    /// `2130706433`) and whether it is a loopback address (`localhost` or a
    /// name under it, `127.0.0.0/8`, `::1`; RFC 8252 §7.3, §8.3): what a
    /// consent page names. `None` for a URI without a host (a private-use
    /// scheme such as `com.example.app:/cb`, RFC 8252 §7.1).
    pub fn redirect_host(&self) -> Option<(String, bool)> {
        redirect_host(&self.redirect_uri)
    }
}

/// The host of a URI as the URL parser (and so the browser) reads it, and
/// whether it is loopback: the text as registered may spell it otherwise.
fn redirect_host(uri: &str) -> Option<(String, bool)> {
    let url = url::Url::parse(uri).ok()?;
    let loopback = match url.host()? {
        url::Host::Domain(name) => {
            let name = name.trim_end_matches('.');
            name.eq_ignore_ascii_case("localhost")
                || name.to_ascii_lowercase().ends_with(".localhost")
        }
        // `0.0.0.0` and `[::]` reach this machine too in browsers that
        // still allow them, as does an IPv4-mapped loopback address.
        url::Host::Ipv4(ip) => ip.is_loopback() || ip.is_unspecified(),
        url::Host::Ipv6(ip) => {
            ip.is_loopback()
                || ip.is_unspecified()
                || ip.to_ipv4_mapped().is_some_and(|v4| v4.is_loopback())
        }
    };
    let host = url.host_str()?;
    if host.is_empty() {
        return None;
    }
    Some((host.to_owned(), loopback))
}

impl std::fmt::Debug for Prompt {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Prompt")
            .field("client", &self.client.id)
            .field("scope", &self.scope)
            .field("resource", &self.resource)
            .field("redirect_uri", &self.redirect_uri)
            .finish_non_exhaustive()
    }
}

/// What to do with an authorization request.
#[derive(Debug)]
#[non_exhaustive]
pub enum AuthorizeOutcome {
    /// Send the browser back to the client (a code or an error).
    Redirect(AuthorizationRedirect),
    /// The resource owner must log in; afterwards call `Server::resume`.
    Login(Prompt),
    /// The logged-in owner must decide; afterwards call `Server::decide`.
    Consent(Prompt),
    /// The client or redirect URI could not be verified: show an error page,
    /// never redirect (RFC 6749 §4.1.2.1).
    ErrorPage(OAuthError),
}

/// A request that passed every check and may proceed to login and consent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValidatedRequest {
    /// The client.
    pub client: Arc<Client>,
    /// The pending state to store.
    pub pending: PendingAuthorization,
}

/// Why validation failed: before or after the redirect URI was verified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rejection {
    /// Show an error page (RFC 6749 §4.1.2.1, first paragraph).
    ErrorPage(OAuthError),
    /// Tell the client at its verified redirect URI.
    Redirect(Box<ResponseTarget>, OAuthError),
}

/// Parameters that identify the client and the redirect target: if repeated,
/// nothing about the request can be trusted enough to redirect.
const IDENTIFYING: [&str; 2] = ["client_id", "redirect_uri"];

/// The verified redirect URI and the client's `state`: where a refusal is
/// answered from here on, and what a valid request keeps (moved, not
/// copied; the issuer is added only to a refusal's [`ResponseTarget`]).
struct VerifiedTarget {
    redirect_uri: String,
    state: Option<String>,
}

impl VerifiedTarget {
    fn target(&self, issuer: &str) -> ResponseTarget {
        ResponseTarget {
            redirect_uri: self.redirect_uri.clone(),
            state: self.state.clone(),
            issuer: issuer.to_owned(),
        }
    }
}

/// Checks the client id and redirect URI; the first step, before anything may
/// be redirected. `client` is the registry's answer for `params["client_id"]`.
fn verify_redirect_target(
    params: &Params,
    flaws: &Flaws,
    client: Option<&Client>,
) -> Result<VerifiedTarget, OAuthError> {
    flaws.refuse_read(|name| IDENTIFYING.contains(&name))?;
    params.require("client_id")?;
    let client = client.ok_or_else(|| OAuthError::invalid_client("unknown client_id"))?;
    let redirect_uri = match params.get("redirect_uri") {
        Some(requested) => {
            // A registered URI is valid, so an exact match needs no parse;
            // only a loopback URI with another port (RFC 8252 §7.3) is
            // checked for being a URI at all.
            let exact = client.redirect_uris.iter().any(|r| r.as_str() == requested);
            if !exact
                && (RedirectUri::new(requested).is_err() || !client.accepts_redirect_uri(requested))
            {
                return Err(OAuthError::invalid_request(
                    "redirect_uri is not registered for this client",
                ));
            }
            requested.to_owned()
        }
        // §3.1.2.3: may be omitted only when exactly one URI is registered.
        None => match client.redirect_uris.as_slice() {
            [only] => only.as_str().to_owned(),
            [] => {
                return Err(OAuthError::unauthorized_client(
                    "the client has no registered redirect_uri",
                ));
            }
            _ => {
                return Err(OAuthError::invalid_request(
                    "redirect_uri is required for this client",
                ));
            }
        },
    };
    Ok(VerifiedTarget {
        redirect_uri,
        state: params.get("state").map(str::to_owned),
    })
}

/// The authorization request's parameters this server reads (RFC 6749
/// §4.1.1, RFC 7636 §4.3, RFC 8707 §2, RFC 9101's `request`, RFC 9126 §4,
/// RFC 9449 §10, `response_mode`): only these are refused when repeated or
/// malformed. Any other is ignored, as RFC 6749 §3.1 requires ("MUST
/// ignore unrecognized request parameters").
pub(crate) const RECOGNIZED: &[&str] = &[
    "response_type",
    "client_id",
    "redirect_uri",
    "scope",
    "state",
    "code_challenge",
    "code_challenge_method",
    "resource",
    "request",
    "request_uri",
    "response_mode",
    "dpop_jkt",
];

/// Validates an authorization request (RFC 6749 §4.1.1, RFC 7636 §4.3).
pub(crate) fn validate(
    params: &Params,
    flaws: &Flaws,
    client: Option<&Arc<Client>>,
    config: &Config,
    now: time::OffsetDateTime,
) -> Result<ValidatedRequest, Rejection> {
    let target = verify_redirect_target(params, flaws, client.map(|c| &**c))
        .map_err(Rejection::ErrorPage)?;
    let Some(client) = client else {
        return Err(Rejection::ErrorPage(OAuthError::invalid_client(
            "unknown client_id",
        )));
    };
    // RFC 9700 §4.11.2: a client that registered itself (RFC 7591, or a
    // client ID metadata document) chose its redirect URIs and nobody
    // vetted them, so an erroneous request in its name would make this
    // server redirect anybody's browser to a site of the requester's
    // choosing: the server "SHOULD only automatically redirect the user
    // agent if it trusts the redirection URI". Its errors are error pages;
    // the operator's clients' errors go back to them (RFC 6749 §4.1.2.1).
    let trusted = !client.is_dynamically_registered();
    let reject = |e: OAuthError| {
        if trusted {
            Rejection::Redirect(Box::new(target.target(&config.issuer)), e)
        } else {
            Rejection::ErrorPage(e)
        }
    };
    // §3.1: a parameter this server reads must not come twice or
    // malformed; any other "MUST" be ignored, repeated or not. No value may
    // be too long, read or not. Refused at the verified redirect URI, the
    // value itself (a `state`, say) left out of the answer.
    flaws
        .refuse(|name| RECOGNIZED.contains(&name))
        .map_err(reject)?;
    match params.get("response_type") {
        None => {
            return Err(reject(OAuthError::invalid_request(
                "missing parameter `response_type`",
            )));
        }
        Some("code") => {}
        Some(_) => {
            return Err(reject(OAuthError::new(
                ErrorCode::UnsupportedResponseType,
                "only response_type=code is supported",
            )));
        }
    }
    // OAuth 2.0 Multiple Response Type Encoding Practices §2.1: the answer
    // comes in the query (`response_modes_supported: ["query"]`); a client
    // asking for another mode would look for it where it never comes, so
    // it is told (in the query, the one mode it gets) instead of ignored.
    if params
        .get("response_mode")
        .is_some_and(|mode| mode != "query")
    {
        return Err(reject(OAuthError::invalid_request(
            "only response_mode=query is supported",
        )));
    }
    if !client.allows_grant(GrantType::AUTHORIZATION_CODE) {
        return Err(reject(OAuthError::unauthorized_client(
            "the client may not use the authorization code grant",
        )));
    }
    if params.contains("request") {
        return Err(reject(OAuthError::invalid_request(
            "request objects are not supported",
        )));
    }
    if params.contains("request_uri") {
        // Only reached by a pushed request itself (the authorization
        // endpoint takes `request_uri` before validating).
        return Err(reject(OAuthError::invalid_request(
            "request_uri must not be pushed",
        )));
    }
    let challenge = match (
        params.get("code_challenge"),
        params.get("code_challenge_method"),
    ) {
        (Some(c), method) => Some(CodeChallenge::parse(c, method).map_err(reject)?),
        (None, Some(_)) => {
            return Err(reject(OAuthError::invalid_request(
                "code_challenge_method without code_challenge",
            )));
        }
        (None, None) => None,
    };
    let pkce_required = client.is_public() || config.pkce == PkcePolicy::RequiredForAll;
    if challenge.is_none() && pkce_required {
        // RFC 7636 §4.4.1.
        return Err(reject(OAuthError::invalid_request(
            "code_challenge is required (PKCE, S256)",
        )));
    }
    let scope = resolve_scope(params.get("scope"), &client.scope).map_err(reject)?;
    // RFC 8707 §2: `invalid_target`, at the verified redirect URI.
    let audience = crate::resource::requested_resource(params)
        .and_then(|requested| crate::resource::resolve(requested, client, config))
        .map_err(reject)?;
    // RFC 9449 §10: `dpop_jkt` binds the code to a DPoP key; a SHA-256
    // thumbprint is 43 base64url characters.
    let dpop_jkt = match params.get("dpop_jkt") {
        None => None,
        Some(jkt)
            if jkt.len() == 43
                && jkt
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_') =>
        {
            Some(jkt.to_owned())
        }
        Some(_) => {
            return Err(reject(OAuthError::invalid_request(
                "dpop_jkt must be a JWK SHA-256 thumbprint (RFC 9449 Section 10)",
            )));
        }
    };
    // The verified redirect URI and the state move into the request.
    let VerifiedTarget {
        redirect_uri,
        state,
        ..
    } = target;
    Ok(ValidatedRequest {
        client: client.clone(),
        pending: PendingAuthorization {
            client_id: client.id.clone(),
            redirect_uri,
            redirect_uri_sent: params.contains("redirect_uri"),
            scope,
            state,
            challenge,
            audience,
            dpop_jkt,
            expires_at: now + config.lifetimes.pending,
        },
    })
}

impl PendingAuthorization {
    /// Where the answer to this request goes.
    pub fn target(&self, issuer: &str) -> ResponseTarget {
        ResponseTarget {
            redirect_uri: self.redirect_uri.clone(),
            state: self.state.clone(),
            issuer: issuer.to_owned(),
        }
    }
}

#[cfg(test)]
mod tests {

    #[test]
    fn the_redirect_host_a_consent_page_names() {
        let host = |uri: &str| super::redirect_host(uri);
        let some = |h: &str, l: bool| Some((h.to_owned(), l));
        assert_eq!(host("https://app.example/cb"), some("app.example", false));
        assert_eq!(
            host("https://u@App.Example:8443/cb?x#y"),
            some("app.example", false)
        );
        assert_eq!(
            host("http://127.0.0.1:9001/callback"),
            some("127.0.0.1", true)
        );
        assert_eq!(host("http://127.8.0.1/cb"), some("127.8.0.1", true));
        assert_eq!(host("http://LOCALHOST:3000/cb"), some("localhost", true));
        assert_eq!(host("http://app.localhost/cb"), some("app.localhost", true));
        assert_eq!(host("http://[::1]:8080/cb"), some("[::1]", true));
        assert_eq!(
            host("https://[2001:db8::1]/cb"),
            some("[2001:db8::1]", false)
        );
        // Other spellings of loopback are named as the browser reads them,
        // and warned about (the registered text may hide it).
        assert_eq!(host("http://2130706433/cb"), some("127.0.0.1", true));
        assert_eq!(host("http://127.1/cb"), some("127.0.0.1", true));
        assert_eq!(host("http://0x7f.0.0.1/cb"), some("127.0.0.1", true));
        assert_eq!(host("http://[0:0::1]/cb"), some("[::1]", true));
        assert_eq!(host("http://%6cocalhost/cb"), some("localhost", true));
        assert_eq!(
            host("http://[::ffff:127.0.0.1]/cb"),
            some("[::ffff:7f00:1]", true)
        );
        assert_eq!(host("http://0.0.0.0:8080/cb"), some("0.0.0.0", true));
        assert_eq!(host("com.example.app:/cb"), None);
    }

    use super::*;

    proptest::proptest! {
        /// Byte for byte what `form_urlencoded::byte_serialize` writes, for
        /// any text (multi-byte characters, every ASCII byte).
        #[test]
        fn form_encoding_matches_byte_serialize(value in "(?s).{0,40}") {
            let mut ours = String::from("x");
            append_form_encoded(&mut ours, &value);
            let theirs: String = url::form_urlencoded::byte_serialize(value.as_bytes()).collect();
            proptest::prop_assert_eq!(ours, format!("x{theirs}"));
        }
    }

    #[test]
    fn form_encoding_of_every_ascii_byte_matches_byte_serialize() {
        let all: String = (0..128u8).map(char::from).collect();
        let mut ours = String::new();
        append_form_encoded(&mut ours, &all);
        let theirs: String = url::form_urlencoded::byte_serialize(all.as_bytes()).collect();
        assert_eq!(ours, theirs);
    }

    /// The response's query is what `form_urlencoded`'s serializer writes
    /// (RFC 6749 Appendix B), whether or not a value needs escaping.
    #[test]
    fn redirect_query_is_form_encoded() {
        for (redirect_uri, sep) in [
            ("https://c.example/cb", '?'),
            ("https://c.example/cb?x=1", '&'),
        ] {
            for state in [
                None,
                Some("af0ifjsldkj"),
                Some("a b+c/\u{e9}&="),
                Some("*-._~"),
            ] {
                let target = ResponseTarget {
                    redirect_uri: redirect_uri.into(),
                    state: state.map(str::to_owned),
                    issuer: "https://as.example/t".into(),
                };
                let mut expected = url::form_urlencoded::Serializer::new(String::new());
                expected.append_pair("code", "c0de");
                if let Some(state) = state {
                    expected.append_pair("state", state);
                }
                expected.append_pair("iss", "https://as.example/t");
                assert_eq!(
                    target.code("c0de").location(),
                    format!("{redirect_uri}{sep}{}", expected.finish())
                );
            }
        }
    }
    use crate::client::{ClientId, SecretHash};
    use crate::config::{EndpointPaths, Lifetimes};

    fn config(pkce: PkcePolicy) -> Config {
        Config {
            issuer: "https://as.example".into(),
            lifetimes: Lifetimes::default(),
            pkce,
            paths: EndpointPaths::default(),
            scopes: Default::default(),
            realm: "r".into(),
            max_body_bytes: 65536,
            device_poll_interval: 5,
            require_pushed_authorization_requests: false,
            cross_origin: crate::config::CrossOrigin::default(),
            registration: None,
            resources: Default::default(),
            default_resource: None,
            dpop: Default::default(),
        }
    }

    fn client() -> Client {
        Client::confidential(ClientId::new("shop").unwrap(), "Shop", SecretHash::of("s"))
            .with_redirect_uri(RedirectUri::new("https://shop.example/cb").unwrap())
            .with_grant_types(["authorization_code"])
            .with_scope(Scope::parse("a b").unwrap())
    }

    const CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";

    fn run(
        query: &str,
        client: Option<&Client>,
        pkce: PkcePolicy,
    ) -> Result<ValidatedRequest, Rejection> {
        let (params, flaws) = Params::parse_reporting_flaws(query);
        let client = client.map(|c| Arc::new(c.clone()));
        validate(
            &params,
            &flaws,
            client.as_ref(),
            &config(pkce),
            time::OffsetDateTime::UNIX_EPOCH,
        )
    }

    fn ok_query(extra: &str) -> String {
        format!(
            "response_type=code&client_id=shop&state=s%20t&code_challenge={CHALLENGE}&code_challenge_method=S256{extra}"
        )
    }

    fn redirect_code(r: Result<ValidatedRequest, Rejection>) -> Option<ErrorCode> {
        match r {
            Err(Rejection::Redirect(target, e)) => {
                assert_eq!(target.redirect_uri, "https://shop.example/cb");
                assert_eq!(target.state.as_deref(), Some("s t"));
                Some(e.code)
            }
            _ => None,
        }
    }

    fn page_code(r: Result<ValidatedRequest, Rejection>) -> Option<ErrorCode> {
        match r {
            Err(Rejection::ErrorPage(e)) => Some(e.code),
            _ => None,
        }
    }

    #[test]
    fn valid_request_defaults_scope_and_redirect() {
        let c = client();
        let v = run(&ok_query(""), Some(&c), PkcePolicy::RequiredForAll).unwrap();
        assert_eq!(v.pending.scope.to_string(), "a b");
        assert_eq!(v.pending.redirect_uri, "https://shop.example/cb");
        assert!(!v.pending.redirect_uri_sent);
        assert_eq!(v.pending.state.as_deref(), Some("s t"));
        assert_eq!(
            v.pending.expires_at,
            time::OffsetDateTime::UNIX_EPOCH + time::Duration::minutes(10)
        );
        // The one response mode served may be named.
        let query_mode = ok_query("&response_mode=query");
        assert!(run(&query_mode, Some(&c), PkcePolicy::RequiredForAll).is_ok());
    }

    #[test]
    fn never_redirects_for_bad_client_or_redirect_uri_rfc6749_4_1_2_1() {
        let c = client();
        assert_eq!(
            page_code(run(&ok_query(""), None, PkcePolicy::RequiredForAll)),
            Some(ErrorCode::InvalidClient)
        );
        let q = ok_query("&redirect_uri=https%3A%2F%2Fevil.example%2Fcb");
        assert_eq!(
            page_code(run(&q, Some(&c), PkcePolicy::RequiredForAll)),
            Some(ErrorCode::InvalidRequest)
        );
        let q = ok_query("&client_id=shop");
        assert_eq!(
            page_code(run(&q, Some(&c), PkcePolicy::RequiredForAll)),
            Some(ErrorCode::InvalidRequest)
        );
        let q = "response_type=code";
        assert_eq!(
            page_code(run(q, Some(&c), PkcePolicy::RequiredForAll)),
            Some(ErrorCode::InvalidRequest)
        );
        let no_uris =
            Client::confidential(ClientId::new("shop").unwrap(), "x", SecretHash::of("s"));
        assert_eq!(
            page_code(run(
                &ok_query(""),
                Some(&no_uris),
                PkcePolicy::RequiredForAll
            )),
            Some(ErrorCode::UnauthorizedClient)
        );
    }

    #[test]
    fn errors_after_verification_go_to_the_client() {
        let c = client();
        let cases: Vec<(String, ErrorCode)> = vec![
            (ok_query("&state=again"), ErrorCode::InvalidRequest),
            (
                ok_query("").replace("response_type=code&", ""),
                ErrorCode::InvalidRequest,
            ),
            (
                ok_query("").replace("response_type=code", "response_type=token"),
                ErrorCode::UnsupportedResponseType,
            ),
            (
                ok_query("").replace("code_challenge_method=S256", "code_challenge_method=plain"),
                ErrorCode::InvalidRequest,
            ),
            (ok_query("&request_uri=urn%3Ax"), ErrorCode::InvalidRequest),
            (
                ok_query("&response_mode=fragment"),
                ErrorCode::InvalidRequest,
            ),
            (
                ok_query("&response_mode=form_post"),
                ErrorCode::InvalidRequest,
            ),
            (ok_query("&scope=a+c"), ErrorCode::InvalidScope),
            (ok_query("&scope=a%22"), ErrorCode::InvalidScope),
            (
                "response_type=code&client_id=shop&state=s%20t".to_string(),
                ErrorCode::InvalidRequest,
            ),
            (
                "response_type=code&client_id=shop&state=s%20t&code_challenge_method=S256"
                    .to_string(),
                ErrorCode::InvalidRequest,
            ),
        ];
        for (q, code) in cases {
            assert_eq!(
                redirect_code(run(&q, Some(&c), PkcePolicy::RequiredForAll)),
                Some(code),
                "{q}"
            );
        }
        let no_grant = client().with_grant_types(["client_credentials"]);
        assert_eq!(
            redirect_code(run(
                &ok_query(""),
                Some(&no_grant),
                PkcePolicy::RequiredForAll
            )),
            Some(ErrorCode::UnauthorizedClient)
        );
    }

    #[test]
    fn pkce_policy() {
        let c = client();
        let q = "response_type=code&client_id=shop&state=s%20t";
        assert!(run(q, Some(&c), PkcePolicy::DangerousRequiredForPublicOnly).is_ok());
        let public = Client::public(ClientId::new("shop").unwrap(), "x")
            .with_redirect_uri(RedirectUri::new("https://shop.example/cb").unwrap())
            .with_grant_types(["authorization_code"])
            .with_scope(Scope::parse("a").unwrap());
        assert_eq!(
            redirect_code(run(
                q,
                Some(&public),
                PkcePolicy::DangerousRequiredForPublicOnly
            )),
            Some(ErrorCode::InvalidRequest)
        );
    }

    #[test]
    fn responses_carry_state_and_iss_rfc9207() {
        let t = ResponseTarget {
            redirect_uri: "https://c.example/cb?x=1".into(),
            state: Some("a&b=c".into()),
            issuer: "https://as.example".into(),
        };
        assert_eq!(
            t.code("C").location(),
            "https://c.example/cb?x=1&code=C&state=a%26b%3Dc&iss=https%3A%2F%2Fas.example"
        );
        let e = t.error(&OAuthError::new(ErrorCode::AccessDenied, "no"));
        assert!(
            e.location()
                .contains("error=access_denied&error_description=no&state=a%26b%3Dc&iss=")
        );
        assert!(!format!("{:?}", t.code("SECRET")).contains("SECRET"));
    }
}
