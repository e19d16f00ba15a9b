//! Login handles: the validated authorization request of a browser that
//! has not signed in yet, carried by the browser instead of kept by the
//! server.
//!
//! Anyone can send `GET /authorize` without signing in, as often as they
//! like. If each such request were stored until its owner signs in, a flood
//! of them would fill the store and stop everyone else's logins and token
//! requests (issue 11; RFC 6819 §4.4.1.11, resource exhaustion). So nothing
//! is stored for them: the login page's handle is the request itself,
//! `tsl_` + base64url(JSON) + `.` + base64url(HMAC-SHA256), sealed with a
//! key only the server knows. The browser can read it (it holds nothing it
//! did not send: client, redirect URI, scope, `state`, PKCE challenge) but
//! not change it. A request is stored only once its owner has signed in and
//! a consent page is shown, under a random single-use handle as before.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use time::OffsetDateTime;

use crate::storage::PendingAuthorization;

/// The prefix of a login handle.
pub(crate) const PREFIX: &str = "tsl_";

/// The longest handle unsealed: what a request within the parameter limits
/// can make, with room to spare. Longer text is not even decoded. The worst
/// case is a 2 KiB `state` of control characters, each escaped in JSON as six
/// bytes (12 KiB), with the other values at their 2 KiB limits (~21 KiB of
/// JSON, ~28 KiB in base64): a request the server accepted must never make a
/// handle it will not open.
const MAX_HANDLE_BYTES: usize = 32 * 1024;

/// The key that seals login handles. Each server makes its own at random
/// unless given one ([`crate::ServerBuilder::login_handle_key`]), which
/// servers behind one balancer must share.
#[derive(Clone)]
pub(crate) struct LoginHandleKey([u8; 32]);

impl std::fmt::Debug for LoginHandleKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("LoginHandleKey(..)")
    }
}

impl LoginHandleKey {
    pub(crate) fn new(key: [u8; 32]) -> Self {
        Self(key)
    }

    fn mac(&self) -> Hmac<Sha256> {
        // HMAC takes keys of any length: this cannot fail.
        <Hmac<Sha256> as Mac>::new_from_slice(&self.0)
            .unwrap_or_else(|_| unreachable!("HMAC accepts a 32-byte key"))
    }

    /// The handle for `request`.
    pub(crate) fn seal(&self, request: &PendingAuthorization) -> String {
        let json = serde_json::to_vec(request).unwrap_or_default();
        let mut mac = self.mac();
        mac.update(PREFIX.as_bytes());
        mac.update(&json);
        let tag = mac.finalize().into_bytes();
        let mut handle = String::with_capacity(PREFIX.len() + json.len() * 4 / 3 + 48);
        handle.push_str(PREFIX);
        URL_SAFE_NO_PAD.encode_string(&json, &mut handle);
        handle.push('.');
        URL_SAFE_NO_PAD.encode_string(tag, &mut handle);
        handle
    }

    /// The request a handle carries, if this server sealed it and it has not
    /// expired; `None` for anything else (forged, altered, expired, or not a
    /// login handle at all).
    pub(crate) fn open(&self, handle: &str, now: OffsetDateTime) -> Option<PendingAuthorization> {
        if handle.len() > MAX_HANDLE_BYTES {
            return None;
        }
        let (body, tag) = handle.strip_prefix(PREFIX)?.split_once('.')?;
        let json = URL_SAFE_NO_PAD.decode(body).ok()?;
        let tag = URL_SAFE_NO_PAD.decode(tag).ok()?;
        let mut mac = self.mac();
        mac.update(PREFIX.as_bytes());
        mac.update(&json);
        // Constant time (RFC 6819 §5.1.4.2.2 spirit: no timing oracle).
        mac.verify_slice(&tag).ok()?;
        let request: PendingAuthorization = serde_json::from_slice(&json).ok()?;
        (now < request.expires_at).then_some(request)
    }
}

/// Whether `handle` is a login handle (rather than a stored one).
pub(crate) fn is_login_handle(handle: &str) -> bool {
    handle.starts_with(PREFIX)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::client::ClientId;
    use crate::pkce::CodeChallenge;
    use crate::scope::Scope;
    use time::Duration;

    const NOW: OffsetDateTime = OffsetDateTime::UNIX_EPOCH;

    fn request() -> PendingAuthorization {
        PendingAuthorization {
            client_id: ClientId::new("shop").unwrap(),
            redirect_uri: "https://shop.example/cb".into(),
            redirect_uri_sent: true,
            scope: Scope::parse("read").unwrap(),
            audience: None,
            state: Some("s\"<>é".into()),
            challenge: Some(CodeChallenge::s256(&"v".repeat(43))),
            expires_at: NOW + Duration::minutes(10),
            dpop_jkt: None,
        }
    }

    #[test]
    fn round_trip_until_expiry() {
        let key = LoginHandleKey::new([7; 32]);
        let handle = key.seal(&request());
        assert!(is_login_handle(&handle));
        assert_eq!(key.open(&handle, NOW), Some(request()));
        assert_eq!(key.open(&handle, NOW + Duration::minutes(10)), None);
    }

    #[test]
    fn altered_forged_or_foreign_handles_are_refused() {
        let key = LoginHandleKey::new([7; 32]);
        let handle = key.seal(&request());
        // Another server's key.
        assert_eq!(LoginHandleKey::new([8; 32]).open(&handle, NOW), None);
        // A redirect URI swapped in, resealed without the key.
        let mut changed = request();
        changed.redirect_uri = "https://evil.example/cb".into();
        let forged = LoginHandleKey::new([0; 32]).seal(&changed);
        let (_, tag) = handle.split_once('.').unwrap();
        let (body, _) = forged.split_once('.').unwrap();
        assert_eq!(key.open(&format!("{body}.{tag}"), NOW), None);
        // Any one character changed.
        for i in PREFIX.len()..handle.len() {
            let mut bytes = handle.clone().into_bytes();
            bytes[i] = if bytes[i] == b'A' { b'B' } else { b'A' };
            let altered = String::from_utf8(bytes).unwrap();
            if altered != handle {
                assert_eq!(key.open(&altered, NOW), None, "byte {i}");
            }
        }
        for junk in [
            "",
            "tsl_",
            "tsl_.",
            "tsl_a.b",
            "tsp_abc",
            &"tsl_".repeat(10_000),
        ] {
            assert_eq!(key.open(junk, NOW), None);
        }
    }
}
