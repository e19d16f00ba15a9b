//! Server-side sessions keyed by an opaque, HttpOnly cookie.
//!
//! Everything sensitive (PKCE verifiers, `state` values, access and refresh
//! tokens) lives here, in process memory; the browser only ever holds a random
//! 256-bit session id.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use axum::http::HeaderMap;
use axum::http::header::COOKIE;
use oauth2::{AccessToken, CsrfToken, PkceCodeVerifier, RefreshToken};

/// Name of PrintShop's session cookie.
pub const COOKIE_NAME: &str = "printshop_session";
/// A session unused for this long is forgotten.
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(60 * 60);
/// An authorization started longer ago than this cannot be completed.
pub const PENDING_TIMEOUT: Duration = Duration::from_secs(10 * 60);
/// At most this many authorizations may be in flight per session (e.g. in several tabs).
const MAX_PENDING: usize = 4;
/// At most this many sessions are kept; beyond it new visitors are turned away.
const MAX_SESSIONS: usize = 10_000;

/// An authorization request sent to the provider and not yet answered.
#[derive(Debug)]
pub struct Pending {
    /// The `state` sent with the request.
    pub state: CsrfToken,
    /// The PKCE verifier whose S256 challenge was sent.
    pub verifier: PkceCodeVerifier,
    /// When the request was made.
    pub started: Instant,
}

/// The tokens of a linked PhotoBook account.
#[derive(Debug)]
pub struct Link {
    /// Current access token.
    pub access: AccessToken,
    /// Current refresh token, if the provider issued one.
    pub refresh: Option<RefreshToken>,
    /// When the access token expires, if the provider said.
    pub expires_at: Option<Instant>,
}

impl Link {
    /// Whether the access token is known to have expired (with a small margin).
    pub fn is_expired(&self, now: Instant) -> bool {
        self.expires_at
            .is_some_and(|at| now + Duration::from_secs(5) >= at)
    }
}

/// One browser's state.
#[derive(Debug, Default)]
pub struct Session {
    /// Authorizations in flight, oldest first.
    pub pending: Vec<Pending>,
    /// The linked account, once the dance has succeeded.
    pub link: Option<Link>,
}

impl Session {
    /// Records a new authorization in flight, forgetting the oldest beyond the limit.
    pub fn push_pending(&mut self, pending: Pending) {
        self.pending
            .retain(|p| p.started.elapsed() < PENDING_TIMEOUT);
        if self.pending.len() >= MAX_PENDING {
            self.pending.remove(0);
        }
        self.pending.push(pending);
    }

    /// Takes the pending authorization whose `state` equals `state`, if any.
    pub fn take_pending(&mut self, state: &str) -> Option<Pending> {
        let index = self
            .pending
            .iter()
            .position(|p| constant_time_eq(p.state.secret().as_bytes(), state.as_bytes()))?;
        Some(self.pending.remove(index))
    }
}

/// Compares two byte strings without an early exit on the first difference.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// A session shared between the requests of one browser.
pub type SharedSession = Arc<tokio::sync::Mutex<Session>>;

#[derive(Debug)]
struct Entry {
    last_seen: Instant,
    session: SharedSession,
}

/// All sessions, in memory.
#[derive(Debug, Default)]
pub struct SessionStore {
    entries: Mutex<HashMap<String, Entry>>,
}

/// The store is full; try later.
#[derive(Debug, Clone, Copy)]
pub struct StoreFull;

impl SessionStore {
    /// Finds the session named by the request's cookie, if it exists and is not idle too long.
    pub fn find(&self, headers: &HeaderMap) -> Option<(String, SharedSession)> {
        let id = cookie_value(headers, COOKIE_NAME)?;
        let mut entries = self.entries.lock().unwrap_or_else(PoisonError::into_inner);
        let now = Instant::now();
        let entry = entries.get_mut(&id)?;
        if now.duration_since(entry.last_seen) > IDLE_TIMEOUT {
            entries.remove(&id);
            return None;
        }
        entry.last_seen = now;
        Some((id, entry.session.clone()))
    }

    /// Creates a fresh session and returns its id.
    pub fn create(&self) -> Result<(String, SharedSession), StoreFull> {
        let id = CsrfToken::new_random_len(32).into_secret();
        let session = SharedSession::default();
        let mut entries = self.entries.lock().unwrap_or_else(PoisonError::into_inner);
        let now = Instant::now();
        if entries.len() >= MAX_SESSIONS {
            entries.retain(|_, e| now.duration_since(e.last_seen) <= IDLE_TIMEOUT);
        }
        if entries.len() >= MAX_SESSIONS {
            return Err(StoreFull);
        }
        entries.insert(
            id.clone(),
            Entry {
                last_seen: now,
                session: session.clone(),
            },
        );
        Ok((id, session))
    }

    /// Number of live sessions (for tests and logs).
    pub fn len(&self) -> usize {
        self.entries
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .len()
    }

    /// Whether there are no sessions.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// The `Set-Cookie` value for session `id`: a browser-session cookie (the
/// server forgets idle sessions after [`IDLE_TIMEOUT`]).
pub fn set_cookie(id: &str, secure: bool) -> String {
    let secure = if secure { "; Secure" } else { "" };
    format!("{COOKIE_NAME}={id}; Path=/; HttpOnly; SameSite=Lax{secure}")
}

/// The value of cookie `name` in the request's `Cookie` headers, if present.
fn cookie_value(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(key, _)| *key == name)
        .map(|(_, value)| value.trim_matches('"').to_owned())
        .filter(|value| !value.is_empty())
}

#[cfg(test)]
#[allow(clippy::expect_used)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    #[test]
    fn finds_cookie_among_others() {
        let mut headers = HeaderMap::new();
        headers.append(
            COOKIE,
            HeaderValue::from_static("a=1; printshop_session=xyz; b=2"),
        );
        assert_eq!(cookie_value(&headers, COOKIE_NAME).as_deref(), Some("xyz"));
        let mut headers = HeaderMap::new();
        headers.append(COOKIE, HeaderValue::from_static("a=1"));
        headers.append(COOKIE, HeaderValue::from_static("printshop_session=abc"));
        assert_eq!(cookie_value(&headers, COOKIE_NAME).as_deref(), Some("abc"));
        assert_eq!(cookie_value(&HeaderMap::new(), COOKIE_NAME), None);
    }

    #[test]
    fn unknown_session_is_not_found() {
        let store = SessionStore::default();
        let mut headers = HeaderMap::new();
        headers.append(COOKIE, HeaderValue::from_static("printshop_session=nope"));
        assert!(store.find(&headers).is_none());
        let (id, _) = store.create().expect("room for a session");
        let mut headers = HeaderMap::new();
        let cookie = format!("{COOKIE_NAME}={id}");
        headers.append(
            COOKIE,
            HeaderValue::from_str(&cookie).expect("valid header"),
        );
        assert!(store.find(&headers).is_some());
    }

    #[test]
    fn cookie_attributes() {
        let cookie = set_cookie("abc", false);
        assert!(cookie.contains("HttpOnly"));
        assert!(cookie.contains("SameSite=Lax"));
        assert!(!cookie.contains("Secure"));
        assert!(set_cookie("abc", true).contains("; Secure"));
    }

    #[test]
    fn pending_is_matched_by_state_and_taken_once() {
        let mut session = Session::default();
        for _ in 0..6 {
            let (_, verifier) = oauth2::PkceCodeChallenge::new_random_sha256();
            session.push_pending(Pending {
                state: CsrfToken::new_random(),
                verifier,
                started: Instant::now(),
            });
        }
        assert_eq!(session.pending.len(), MAX_PENDING);
        let state = session.pending[1].state.secret().clone();
        assert!(session.take_pending("wrong").is_none());
        assert!(session.take_pending(&state).is_some());
        assert!(session.take_pending(&state).is_none());
    }
}
