//! Server-side browser sessions, each with its CSRF token.
//!
//! The browser holds only a random 256-bit id in an `HttpOnly`,
//! `SameSite=Lax` cookie; the server keeps the SHA-256 of that id, so the
//! session table holds nothing a cookie can be made from. A session starts
//! anonymous (when the login page is first shown, so the login form has a
//! CSRF token) and is replaced by a fresh one at sign-in, so an id planted
//! before sign-in is worthless after it (session fixation).
//!
//! Each session also remembers (as SHA-256 digests) the handles of the
//! pending authorization requests whose login or consent page it was shown,
//! at most [`MAX_HANDLES_PER_SESSION`]; the login and consent forms are
//! accepted only with a handle their session holds, so a handle cannot be
//! used from another browser (session mixing, RFC 6749 §10.12, RFC 9700 §4.5).
//! Those handles move to the new session id at sign-in.

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
/// How long an anonymous session (login page shown, nobody signed in) lives.
pub const ANONYMOUS_LIFETIME: Duration = Duration::from_secs(30 * 60);
/// How long a signed-in session lives.
pub const SIGNED_IN_LIFETIME: Duration = Duration::from_secs(8 * 60 * 60);
/// At most this many sessions are kept; beyond, expired ones are dropped,
/// then the ones closest to expiry.
pub const MAX_SESSIONS: usize = 50_000;
/// At most this many pending-request handles are bound to one session;
/// binding one more forgets the oldest (its page then answers "expired").
pub const MAX_HANDLES_PER_SESSION: usize = 8;

/// What a request's session says: who is signed in, and the CSRF token its forms must carry.
#[derive(Clone, PartialEq, Eq)]
pub struct Session {
    /// The signed-in user, `None` before sign-in.
    pub user: Option<Subject>,
    /// The CSRF token of this session's forms.
    pub csrf: String,
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session")
            .field("user", &self.user)
            .finish_non_exhaustive()
    }
}

impl Session {
    /// Whether `presented` is this session's CSRF token (constant time).
    pub fn csrf_matches(&self, presented: &str) -> bool {
        !presented.is_empty() && bool::from(self.csrf.as_bytes().ct_eq(presented.as_bytes()))
    }
}

/// A new session: the cookie value to send, and the session.
#[derive(Debug, Clone)]
pub struct NewSession {
    /// The id to put in the cookie (secret).
    pub cookie_value: String,
    /// The session.
    pub session: Session,
}

struct Entry {
    session: Session,
    expires: Instant,
    /// SHA-256 of each pending-request handle shown to this session, oldest first.
    handles: VecDeque<[u8; 32]>,
}

/// The session table (in memory; sessions end with the process).
pub struct Sessions {
    table: Mutex<HashMap<[u8; 32], Entry>>,
    random: Box<dyn Random>,
}

impl std::fmt::Debug for Sessions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sessions")
            .field("len", &self.len())
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

impl Sessions {
    /// An empty table using the OS-seeded CSPRNG.
    pub fn new() -> Self {
        Self {
            table: Mutex::new(HashMap::new()),
            random: Box::new(OsRandom),
        }
    }

    fn table(&self) -> std::sync::MutexGuard<'_, HashMap<[u8; 32], Entry>> {
        self.table.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn token(&self) -> String {
        URL_SAFE_NO_PAD.encode(self.random.bytes32())
    }

    /// How many sessions are kept (expired ones included until swept).
    pub fn len(&self) -> usize {
        self.table().len()
    }

    /// Whether no session is kept.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The live session named by a cookie value.
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

    /// Starts an anonymous session (for a login form's CSRF token).
    pub fn start_anonymous(&self) -> NewSession {
        self.insert(None, ANONYMOUS_LIFETIME)
    }

    /// Signs `user` in: ends the session `previous` (if any) and starts a
    /// fresh one with a new id and a new CSRF token. The pending-request
    /// handles bound to `previous` (if live) are bound to the new session.
    pub fn sign_in(&self, previous: Option<&str>, user: Subject) -> NewSession {
        let now = Instant::now();
        let handles = previous
            .and_then(|old| self.table().remove(&key(old)))
            .filter(|e| e.expires > now)
            .map(|e| e.handles)
            .unwrap_or_default();
        self.insert_with(Some(user), SIGNED_IN_LIFETIME, handles)
    }

    /// Binds a pending-request `handle` to the live session named by
    /// `cookie_value`, so the login and consent forms accept it from that
    /// session only. Beyond [`MAX_HANDLES_PER_SESSION`] the oldest handle is
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

    fn insert(&self, user: Option<Subject>, lifetime: Duration) -> NewSession {
        self.insert_with(user, lifetime, VecDeque::new())
    }

    fn insert_with(
        &self,
        user: Option<Subject>,
        lifetime: Duration,
        handles: VecDeque<[u8; 32]>,
    ) -> NewSession {
        let cookie_value = self.token();
        let session = Session {
            user,
            csrf: self.token(),
        };
        let now = Instant::now();
        let mut table = self.table();
        if table.len() >= MAX_SESSIONS {
            table.retain(|_, e| e.expires > now);
            if table.len() >= MAX_SESSIONS {
                // Still full of live sessions: drop the tenth closest to expiry,
                // so this slow path runs once per many insertions.
                let mut by_expiry: Vec<([u8; 32], Instant)> =
                    table.iter().map(|(k, e)| (*k, e.expires)).collect();
                by_expiry.sort_unstable_by_key(|(_, expires)| *expires);
                let excess = table.len() + 1 - MAX_SESSIONS * 9 / 10;
                for (k, _) in by_expiry.into_iter().take(excess) {
                    table.remove(&k);
                }
            }
        }
        table.insert(
            key(&cookie_value),
            Entry {
                session: session.clone(),
                expires: now + lifetime,
                handles,
            },
        );
        NewSession {
            cookie_value,
            session,
        }
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

    #[test]
    fn anonymous_then_signed_in() {
        let sessions = Sessions::new();
        let anon = sessions.start_anonymous();
        assert_eq!(anon.cookie_value.len(), 43);
        let got = sessions.get(&anon.cookie_value).unwrap();
        assert_eq!(got.user, None);
        assert!(got.csrf_matches(&anon.session.csrf));
        assert!(!got.csrf_matches(""));
        assert!(!got.csrf_matches("nope"));

        let signed = sessions.sign_in(Some(&anon.cookie_value), Subject::new("alice"));
        assert_ne!(signed.cookie_value, anon.cookie_value);
        assert_ne!(signed.session.csrf, anon.session.csrf);
        assert!(
            sessions.get(&anon.cookie_value).is_none(),
            "fixation: old id dies"
        );
        assert_eq!(
            sessions.get(&signed.cookie_value).unwrap().user,
            Some(Subject::new("alice"))
        );
        assert!(sessions.get("forged").is_none());
        assert!(!format!("{:?}", signed.session).contains(&signed.session.csrf));
    }

    #[test]
    fn handles_are_bound_per_session_bounded_and_carried_at_sign_in() {
        let sessions = Sessions::new();
        let alice = sessions.start_anonymous();
        let bob = sessions.start_anonymous();
        assert!(sessions.bind_handle(&alice.cookie_value, "tsp_a"));
        assert!(sessions.holds_handle(&alice.cookie_value, "tsp_a"));
        assert!(!sessions.holds_handle(&bob.cookie_value, "tsp_a"));
        assert!(!sessions.holds_handle("forged", "tsp_a"));
        assert!(!sessions.bind_handle("forged", "tsp_a"));

        // Carried to the new id at sign-in; the old id holds nothing.
        let signed = sessions.sign_in(Some(&alice.cookie_value), Subject::new("alice"));
        assert!(sessions.holds_handle(&signed.cookie_value, "tsp_a"));
        assert!(!sessions.holds_handle(&alice.cookie_value, "tsp_a"));
        // Bob signing in carries only his own (none).
        let bob_in = sessions.sign_in(Some(&bob.cookie_value), Subject::new("bob"));
        assert!(!sessions.holds_handle(&bob_in.cookie_value, "tsp_a"));

        sessions.release_handle(&signed.cookie_value, "tsp_a");
        assert!(!sessions.holds_handle(&signed.cookie_value, "tsp_a"));

        // Bounded: the oldest is forgotten.
        for i in 0..=MAX_HANDLES_PER_SESSION {
            assert!(sessions.bind_handle(&signed.cookie_value, &format!("tsp_{i}")));
        }
        assert!(!sessions.holds_handle(&signed.cookie_value, "tsp_0"));
        for i in 1..=MAX_HANDLES_PER_SESSION {
            assert!(sessions.holds_handle(&signed.cookie_value, &format!("tsp_{i}")));
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

    #[test]
    fn table_is_bounded() {
        let sessions = Sessions::new();
        for _ in 0..(MAX_SESSIONS + 10) {
            sessions.start_anonymous();
        }
        assert!(sessions.len() <= MAX_SESSIONS);
    }
}
