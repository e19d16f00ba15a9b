//! Browser sessions: stateless until sign-in, server-side after it.
//!
//! The browser holds a random 256-bit id in an `HttpOnly`, `SameSite=Lax`
//! cookie. **Nothing is stored for a browser that has not signed in**: the
//! login form's CSRF token and its binding to the pending request it was
//! shown for are MACs (HMAC-SHA-256 under a per-process random key) over that
//! id and the request's handle (see [`Sessions::login_token`]). So a flood
//! of cookieless `GET /authorize` requests makes this table keep nothing, and
//! cannot evict the session of someone in the middle of signing in (issue 11,
//! defect 3): their login form is checked against their cookie alone.
//!
//! Signing in creates the first server-side record, under a fresh id (an id
//! planted before sign-in is worthless after it: session fixation), with a
//! random CSRF token for the consent form. The table keeps the SHA-256 of
//! each id, so it holds nothing a cookie can be made from; it is bounded in
//! total ([`MAX_SESSIONS`]) and per user ([`MAX_SESSIONS_PER_USER`], a
//! user's oldest session makes room for a new one), so only people who know
//! a password can add to it, and each only up to their own share.
//!
//! Each signed-in session also remembers (as SHA-256 digests) the handles of
//! the pending authorization requests whose consent page it was shown, at
//! most [`MAX_HANDLES_PER_SESSION`]; the consent form is accepted only with a
//! handle its session holds, as the login form only with a token bound to
//! its handle and cookie, so a handle cannot be used from another browser
//! (session mixing, RFC 6749 §10.12, RFC 9700 §4.5).

use std::collections::{HashMap, VecDeque};
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use tessera::{OsRandom, Random, Subject};

/// The session cookie's name.
pub const COOKIE_NAME: &str = "photobook_session";
/// How long a signed-in session lives.
pub const SIGNED_IN_LIFETIME: Duration = Duration::from_secs(8 * 60 * 60);
/// At most this many signed-in sessions are kept; beyond, expired ones are
/// dropped, then the ones closest to expiry.
pub const MAX_SESSIONS: usize = 50_000;
/// At most this many signed-in sessions are kept per user; signing in once
/// more ends that user's oldest.
pub const MAX_SESSIONS_PER_USER: usize = 16;
/// At most this many pending-request handles are bound to one session;
/// binding one more forgets the oldest (its page then answers "expired").
pub const MAX_HANDLES_PER_SESSION: usize = 8;
/// The length of a browser id (32 random bytes, base64url without padding).
pub const BROWSER_ID_LEN: usize = 43;

/// A signed-in session: who, and the CSRF token its consent form must carry.
#[derive(Clone, PartialEq, Eq)]
pub struct Session {
    /// The signed-in user.
    pub user: Subject,
    /// The CSRF token of this session's forms (secret).
    pub csrf: String,
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session")
            .field("user", &self.user)
            .field("csrf", &"[redacted]")
            .finish()
    }
}

impl Session {
    /// Whether `presented` is this session's CSRF token (constant time).
    pub fn csrf_matches(&self, presented: &str) -> bool {
        !presented.is_empty() && bool::from(self.csrf.as_bytes().ct_eq(presented.as_bytes()))
    }
}

/// A new signed-in session: the cookie value to send, and the session.
#[derive(Clone)]
pub struct NewSession {
    /// The id to put in the cookie (secret).
    pub cookie_value: String,
    /// The session.
    pub session: Session,
}

impl std::fmt::Debug for NewSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NewSession")
            .field("cookie_value", &"[redacted]")
            .field("session", &self.session)
            .finish()
    }
}

/// What [`Sessions::check_login_token`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LoginToken {
    /// The token was made for this browser and this handle.
    Valid,
    /// The token is this browser's, but was not made for this handle (a
    /// handle shown to another browser, or a form re-shown without one).
    ForeignHandle,
    /// Missing, forged, or another browser's: a CSRF failure.
    Invalid,
}

struct Entry {
    session: Session,
    expires: Instant,
    /// SHA-256 of each pending-request handle shown to this session, oldest first.
    handles: VecDeque<[u8; 32]>,
}

/// The session table (in memory; sessions end with the process), and the
/// key of the login forms' tokens.
pub struct Sessions {
    table: Mutex<HashMap<[u8; 32], Entry>>,
    /// Key of the login-form MACs; never leaves this struct.
    key: [u8; 32],
    random: Box<dyn Random>,
    capacity: usize,
}

impl std::fmt::Debug for Sessions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sessions")
            .field("len", &self.len())
            .field("capacity", &self.capacity)
            .finish_non_exhaustive()
    }
}

impl Default for Sessions {
    fn default() -> Self {
        Self::new()
    }
}

fn key(cookie_value: &str) -> [u8; 32] {
    Sha256::digest(cookie_value.as_bytes()).into()
}

fn handle_key(handle: &str) -> [u8; 32] {
    Sha256::digest(handle.as_bytes()).into()
}

/// HMAC-SHA-256 (RFC 2104) of `message` under `key` (at most 64 bytes, as
/// every key here is 32).
fn hmac_sha256(key: &[u8], message: &[u8]) -> [u8; 32] {
    let mut ipad = [0x36u8; 64];
    let mut opad = [0x5cu8; 64];
    for (i, k) in key.iter().take(64).enumerate() {
        ipad[i] ^= k;
        opad[i] ^= k;
    }
    let inner = Sha256::new()
        .chain_update(ipad)
        .chain_update(message)
        .finalize();
    Sha256::new()
        .chain_update(opad)
        .chain_update(inner)
        .finalize()
        .into()
}

/// The MAC of `parts` for `purpose`, each part length-prefixed so that no
/// two different lists encode alike.
fn mac(key: &[u8; 32], purpose: &str, parts: &[&str]) -> String {
    let mut message = Vec::with_capacity(64);
    for part in std::iter::once(purpose).chain(parts.iter().copied()) {
        message.extend_from_slice(&(part.len() as u64).to_be_bytes());
        message.extend_from_slice(part.as_bytes());
    }
    URL_SAFE_NO_PAD.encode(hmac_sha256(key, &message))
}

fn same(a: &str, b: &str) -> bool {
    bool::from(a.as_bytes().ct_eq(b.as_bytes()))
}

impl Sessions {
    /// An empty table using the OS-seeded CSPRNG, holding at most
    /// [`MAX_SESSIONS`] signed-in sessions.
    pub fn new() -> Self {
        Self::with_capacity(MAX_SESSIONS)
    }

    /// An empty table holding at most `capacity` signed-in sessions (at least 1).
    pub fn with_capacity(capacity: usize) -> Self {
        let random: Box<dyn Random> = Box::new(OsRandom);
        Self {
            table: Mutex::new(HashMap::new()),
            key: random.bytes32(),
            random,
            capacity: capacity.max(1),
        }
    }

    fn table(&self) -> std::sync::MutexGuard<'_, HashMap<[u8; 32], Entry>> {
        self.table.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn token(&self) -> String {
        URL_SAFE_NO_PAD.encode(self.random.bytes32())
    }

    /// How many signed-in sessions are kept (expired ones included until swept).
    pub fn len(&self) -> usize {
        self.table().len()
    }

    /// Whether no session is kept.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// A fresh random id for a browser's cookie. Nothing is stored: the id
    /// is only what the login form's token is bound to, until sign-in.
    pub fn new_browser_id(&self) -> String {
        self.token()
    }

    /// Whether a cookie value has the shape of a browser id (43 base64url
    /// characters). Anything else is treated as no cookie at all.
    pub fn is_browser_id(cookie_value: &str) -> bool {
        cookie_value.len() == BROWSER_ID_LEN
            && cookie_value
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    }

    /// The hidden `csrf_token` of a login form shown to the browser with
    /// cookie `browser`: a MAC of the browser id (the CSRF part) and, when
    /// `handle` is given, a MAC of the id and the handle (which binds the
    /// form to the pending request it was shown for). Stores nothing.
    pub fn login_token(&self, browser: &str, handle: Option<&str>) -> String {
        let csrf = mac(&self.key, "photobook login csrf", &[browser]);
        match handle {
            Some(handle) => {
                let bound = mac(&self.key, "photobook login handle", &[browser, handle]);
                format!("{csrf}.{bound}")
            }
            None => csrf,
        }
    }

    /// Checks a login form's `csrf_token` against the browser's cookie and
    /// the form's `handle` (constant-time comparisons).
    pub fn check_login_token(&self, browser: &str, handle: &str, presented: &str) -> LoginToken {
        let (csrf, bound) = presented.split_once('.').unwrap_or((presented, ""));
        if csrf.is_empty() || !same(csrf, &mac(&self.key, "photobook login csrf", &[browser])) {
            return LoginToken::Invalid;
        }
        let expected = mac(&self.key, "photobook login handle", &[browser, handle]);
        if same(bound, &expected) {
            LoginToken::Valid
        } else {
            LoginToken::ForeignHandle
        }
    }

    /// The hidden `csrf_token` of a device verification form (the page
    /// where a person types a user code) shown to the browser with cookie
    /// `browser`: a MAC of the browser id and, when `user_code` is given (the
    /// device login form), a MAC of the id and the normalised code, which
    /// binds the form to the code this browser entered. Stores nothing.
    pub fn device_token(&self, browser: &str, user_code: Option<&str>) -> String {
        let csrf = mac(&self.key, "photobook device csrf", &[browser]);
        match user_code {
            Some(code) => {
                let bound = mac(&self.key, "photobook device code", &[browser, code]);
                format!("{csrf}.{bound}")
            }
            None => csrf,
        }
    }

    /// Checks a device form's `csrf_token` against the browser's cookie and,
    /// when `user_code` is given, the code it must be bound to (constant-time
    /// comparisons). Without `user_code` only the CSRF part is checked.
    pub fn check_device_token(
        &self,
        browser: &str,
        user_code: Option<&str>,
        presented: &str,
    ) -> LoginToken {
        let (csrf, bound) = presented.split_once('.').unwrap_or((presented, ""));
        if csrf.is_empty() || !same(csrf, &mac(&self.key, "photobook device csrf", &[browser])) {
            return LoginToken::Invalid;
        }
        let Some(code) = user_code else {
            return LoginToken::Valid;
        };
        let expected = mac(&self.key, "photobook device code", &[browser, code]);
        if same(bound, &expected) {
            LoginToken::Valid
        } else {
            LoginToken::ForeignHandle
        }
    }

    /// The live signed-in session named by a cookie value.
    pub fn get(&self, cookie_value: &str) -> Option<Session> {
        let now = Instant::now();
        let mut table = self.table();
        let k = key(cookie_value);
        match table.get(&k) {
            Some(e) if e.expires > now => Some(e.session.clone()),
            Some(_) => {
                table.remove(&k);
                None
            }
            None => None,
        }
    }

    /// Signs `user` in: ends the session `previous` (if any), and starts a
    /// fresh one with a new id and a new CSRF token, holding no handle yet.
    /// Beyond [`MAX_SESSIONS_PER_USER`] the user's oldest session ends.
    pub fn sign_in(&self, previous: Option<&str>, user: Subject) -> NewSession {
        if let Some(old) = previous {
            self.end(old);
        }
        let cookie_value = self.token();
        let session = Session {
            user,
            csrf: self.token(),
        };
        let now = Instant::now();
        let mut table = self.table();
        let mine: Vec<([u8; 32], Instant)> = table
            .iter()
            .filter(|(_, e)| e.session.user == session.user)
            .map(|(k, e)| (*k, e.expires))
            .collect();
        if mine.len() >= MAX_SESSIONS_PER_USER {
            let mut mine = mine;
            mine.sort_unstable_by_key(|(_, expires)| *expires);
            for (k, _) in mine.iter().take(mine.len() + 1 - MAX_SESSIONS_PER_USER) {
                table.remove(k);
            }
        }
        if table.len() >= self.capacity {
            table.retain(|_, e| e.expires > now);
            if table.len() >= self.capacity {
                // Still full of live sessions: drop the tenth closest to expiry,
                // so this slow path runs once per many sign-ins.
                let mut by_expiry: Vec<([u8; 32], Instant)> =
                    table.iter().map(|(k, e)| (*k, e.expires)).collect();
                by_expiry.sort_unstable_by_key(|(_, expires)| *expires);
                let excess = table.len() + 1 - self.capacity * 9 / 10;
                for (k, _) in by_expiry.into_iter().take(excess) {
                    table.remove(&k);
                }
            }
        }
        table.insert(
            key(&cookie_value),
            Entry {
                session: session.clone(),
                expires: now + SIGNED_IN_LIFETIME,
                handles: VecDeque::new(),
            },
        );
        NewSession {
            cookie_value,
            session,
        }
    }

    /// Binds a pending-request `handle` to the live signed-in session named
    /// by `cookie_value`, so the consent form accepts it from that session
    /// only. Beyond [`MAX_HANDLES_PER_SESSION`] the oldest handle is
    /// forgotten. Returns whether the session is live (nothing bound if not).
    pub fn bind_handle(&self, cookie_value: &str, handle: &str) -> bool {
        let now = Instant::now();
        let mut table = self.table();
        let Some(entry) = table
            .get_mut(&key(cookie_value))
            .filter(|e| e.expires > now)
        else {
            return false;
        };
        let h = handle_key(handle);
        entry.handles.retain(|held| *held != h);
        while entry.handles.len() >= MAX_HANDLES_PER_SESSION {
            entry.handles.pop_front();
        }
        entry.handles.push_back(h);
        true
    }

    /// Whether the live session named by `cookie_value` holds `handle`
    /// (bound by [`Sessions::bind_handle`], not yet released).
    pub fn holds_handle(&self, cookie_value: &str, handle: &str) -> bool {
        let now = Instant::now();
        let h = handle_key(handle);
        self.table()
            .get(&key(cookie_value))
            .is_some_and(|e| e.expires > now && e.handles.contains(&h))
    }

    /// Unbinds `handle` from the session named by `cookie_value` (its
    /// request was decided or is gone).
    pub fn release_handle(&self, cookie_value: &str, handle: &str) {
        let h = handle_key(handle);
        if let Some(entry) = self.table().get_mut(&key(cookie_value)) {
            entry.handles.retain(|held| *held != h);
        }
    }

    /// Ends a session.
    pub fn end(&self, cookie_value: &str) {
        self.table().remove(&key(cookie_value));
    }
}
/// The `Set-Cookie` value for a session id: `HttpOnly`, `SameSite=Lax`,
/// `Path=/`, and `Secure` when the issuer is https.
pub fn set_cookie(cookie_value: &str, secure: bool) -> String {
    format!(
        "{COOKIE_NAME}={cookie_value}; Path=/; HttpOnly; SameSite=Lax{}",
        if secure { "; Secure" } else { "" }
    )
}

/// The session id in `Cookie` header values, if one is named [`COOKIE_NAME`].
pub fn cookie_value<'a>(headers: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    headers
        .into_iter()
        .flat_map(|h| h.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == COOKIE_NAME)
        .map(|(_, value)| value.trim_matches('"'))
        .filter(|v| !v.is_empty())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn hex(bytes: &[u8]) -> String {
        bytes.iter().map(|b| format!("{b:02x}")).collect()
    }

    #[test]
    fn hmac_matches_rfc4231() {
        // RFC 4231 §4.2 and §4.3 (test cases 1 and 2).
        assert_eq!(
            hex(&hmac_sha256(&[0x0b; 20], b"Hi There")),
            "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7"
        );
        assert_eq!(
            hex(&hmac_sha256(b"Jefe", b"what do ya want for nothing?")),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    #[test]
    fn device_tokens_bind_browser_and_code_and_store_nothing() {
        let sessions = Sessions::new();
        let (a, b) = (sessions.new_browser_id(), sessions.new_browser_id());
        let plain = sessions.device_token(&a, None);
        assert_eq!(
            sessions.check_device_token(&a, None, &plain),
            LoginToken::Valid
        );
        assert_eq!(
            sessions.check_device_token(&b, None, &plain),
            LoginToken::Invalid
        );
        assert_eq!(
            sessions.check_device_token(&a, None, ""),
            LoginToken::Invalid
        );
        let bound = sessions.device_token(&a, Some("BCDF-GHJK"));
        assert_eq!(
            sessions.check_device_token(&a, Some("BCDF-GHJK"), &bound),
            LoginToken::Valid
        );
        assert_eq!(
            sessions.check_device_token(&a, Some("BCDF-GHJL"), &bound),
            LoginToken::ForeignHandle
        );
        assert_eq!(
            sessions.check_device_token(&a, Some("BCDF-GHJK"), &plain),
            LoginToken::ForeignHandle
        );
        assert_eq!(
            sessions.check_device_token(&b, Some("BCDF-GHJK"), &bound),
            LoginToken::Invalid
        );
        // Not interchangeable with the login form's tokens.
        let login = sessions.login_token(&a, None);
        assert_eq!(
            sessions.check_device_token(&a, None, &login),
            LoginToken::Invalid
        );
        assert!(sessions.is_empty());
    }

    #[test]
    fn login_tokens_bind_browser_and_handle_and_store_nothing() {
        let sessions = Sessions::new();
        let alice = sessions.new_browser_id();
        let bob = sessions.new_browser_id();
        assert!(Sessions::is_browser_id(&alice));
        assert_ne!(alice, bob);
        let token = sessions.login_token(&alice, Some("tsp_a"));
        assert_eq!(
            sessions.check_login_token(&alice, "tsp_a", &token),
            LoginToken::Valid
        );
        // Another handle with alice's token: not hers to use (RFC 9700 §4.5).
        assert_eq!(
            sessions.check_login_token(&alice, "tsp_b", &token),
            LoginToken::ForeignHandle
        );
        // A token shown without a handle binds none.
        let unbound = sessions.login_token(&alice, None);
        assert_eq!(
            sessions.check_login_token(&alice, "tsp_a", &unbound),
            LoginToken::ForeignHandle
        );
        // Another browser's token, or none, or a forged one: CSRF failure.
        for presented in [
            sessions.login_token(&bob, Some("tsp_a")),
            String::new(),
            ".".into(),
            "forged".into(),
            format!("x.{}", token.split_once('.').unwrap().1),
        ] {
            assert_eq!(
                sessions.check_login_token(&alice, "tsp_a", &presented),
                LoginToken::Invalid,
                "{presented}"
            );
        }
        // Another process (another key) does not accept it either.
        assert_eq!(
            Sessions::new().check_login_token(&alice, "tsp_a", &token),
            LoginToken::Invalid
        );
        assert!(sessions.is_empty(), "nothing kept before sign-in");
        for bad in ["", "short", &"a".repeat(44), &format!("{}!", &alice[1..])] {
            assert!(!Sessions::is_browser_id(bad), "{bad}");
        }
    }

    #[test]
    fn sign_in_starts_a_fresh_session() {
        let sessions = Sessions::new();
        let browser = sessions.new_browser_id();
        let signed = sessions.sign_in(Some(&browser), Subject::new("alice"));
        assert_eq!(signed.cookie_value.len(), BROWSER_ID_LEN);
        assert_ne!(signed.cookie_value, browser, "fixation: a new id");
        assert!(sessions.get(&browser).is_none());
        let got = sessions.get(&signed.cookie_value).unwrap();
        assert_eq!(got.user, Subject::new("alice"));
        assert!(got.csrf_matches(&signed.session.csrf));
        assert!(!got.csrf_matches(""));
        assert!(!got.csrf_matches("nope"));
        assert!(sessions.get("forged").is_none());
        assert!(sessions.bind_handle(&signed.cookie_value, "tsp_a"));

        // Signing in again from a signed-in session ends the old one, and
        // carries none of its handles.
        let again = sessions.sign_in(Some(&signed.cookie_value), Subject::new("bob"));
        assert!(sessions.get(&signed.cookie_value).is_none());
        assert!(!sessions.holds_handle(&again.cookie_value, "tsp_a"));
        assert_eq!(sessions.len(), 1);
    }

    #[test]
    fn handles_are_bound_per_session_and_bounded() {
        let sessions = Sessions::new();
        let alice = sessions.sign_in(None, Subject::new("alice"));
        let bob = sessions.sign_in(None, Subject::new("bob"));
        assert!(sessions.bind_handle(&alice.cookie_value, "tsp_a"));
        assert!(sessions.holds_handle(&alice.cookie_value, "tsp_a"));
        assert!(!sessions.holds_handle(&bob.cookie_value, "tsp_a"));
        assert!(!sessions.holds_handle("forged", "tsp_a"));
        assert!(!sessions.bind_handle("forged", "tsp_a"));

        sessions.release_handle(&alice.cookie_value, "tsp_a");
        assert!(!sessions.holds_handle(&alice.cookie_value, "tsp_a"));

        // Bounded: the oldest is forgotten.
        for i in 0..=MAX_HANDLES_PER_SESSION {
            assert!(sessions.bind_handle(&alice.cookie_value, &format!("tsp_{i}")));
        }
        assert!(!sessions.holds_handle(&alice.cookie_value, "tsp_0"));
        for i in 1..=MAX_HANDLES_PER_SESSION {
            assert!(sessions.holds_handle(&alice.cookie_value, &format!("tsp_{i}")));
        }
    }

    #[test]
    fn cookie_round_trip() {
        let set = set_cookie("abc", false);
        assert_eq!(set, "photobook_session=abc; Path=/; HttpOnly; SameSite=Lax");
        assert!(set_cookie("abc", true).ends_with("; Secure"));
        assert_eq!(
            cookie_value(["a=b; photobook_session=xyz; c=d"]),
            Some("xyz")
        );
        assert_eq!(cookie_value(["a=b", "photobook_session=xyz"]), Some("xyz"));
        assert_eq!(cookie_value(["printshop_session=xyz"]), None);
        assert_eq!(cookie_value(["photobook_session="]), None);
    }

    /// Issue 11, defect 3: a flood of visitors who never sign in adds nothing
    /// to the table, so a login form shown before the flood still verifies.
    #[test]
    fn a_flood_of_anonymous_browsers_keeps_nothing_and_evicts_no_one() {
        let sessions = Sessions::new();
        let victim = sessions.new_browser_id();
        let token = sessions.login_token(&victim, Some("tsp_victim"));
        let bob = sessions.sign_in(None, Subject::new("bob"));
        for i in 0..(MAX_SESSIONS + 10) {
            let id = sessions.new_browser_id();
            let _ = sessions.login_token(&id, Some(&format!("tsp_{i}")));
        }
        assert_eq!(sessions.len(), 1);
        assert_eq!(
            sessions.check_login_token(&victim, "tsp_victim", &token),
            LoginToken::Valid
        );
        assert!(sessions.get(&bob.cookie_value).is_some());
    }

    #[test]
    fn signed_in_sessions_are_bounded_per_user_and_in_total() {
        let sessions = Sessions::with_capacity(40);
        let first = sessions.sign_in(None, Subject::new("alice"));
        let bob = sessions.sign_in(None, Subject::new("bob"));
        for _ in 0..100 {
            sessions.sign_in(None, Subject::new("alice"));
        }
        // Alice's flood of sign-ins only ended her own oldest sessions.
        assert_eq!(sessions.len(), MAX_SESSIONS_PER_USER + 1);
        assert!(sessions.get(&first.cookie_value).is_none());
        assert!(sessions.get(&bob.cookie_value).is_some());
        // Many users: the total stays within the capacity.
        for i in 0..1_000 {
            sessions.sign_in(None, Subject::new(format!("user{i}")));
        }
        assert!(sessions.len() <= 40);
    }

    #[test]
    fn debug_never_shows_ids_tokens_or_keys() {
        // Issue 11, defect 7: no secret in Debug output.
        let sessions = Sessions::new();
        let browser = sessions.new_browser_id();
        let token = sessions.login_token(&browser, Some("tsp_a"));
        let signed = sessions.sign_in(Some(&browser), Subject::new("alice"));
        let key_b64 = URL_SAFE_NO_PAD.encode(sessions.key);
        for shown in [
            format!("{signed:?}"),
            format!("{:?}", signed.session),
            format!("{sessions:?}"),
            format!("{:?}", sessions.get(&signed.cookie_value)),
        ] {
            for secret in [
                signed.cookie_value.as_str(),
                signed.session.csrf.as_str(),
                &token,
                &key_b64,
                &browser,
            ] {
                assert!(!shown.contains(secret), "{shown}");
            }
            assert!(!shown.contains(&format!("{:?}", sessions.key)), "{shown}");
        }
        assert!(format!("{signed:?}").contains("[redacted]"));
        assert!(format!("{signed:?}").contains("alice"));
    }
}
