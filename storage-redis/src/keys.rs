//! The key layout. Clients: `<prefix>client:<id>` and the `<prefix>clients`
//! set. Everything of one grant shares the hash tag `<prefix>{<grant>}`, hence
//! one cluster slot: `…:g` (grant meta), `…:<kind>:<hash>` (records).
//! Replay cache entries: `<prefix>r:<namespace>:<hash>`.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use tessera::storage::ReplayKey;
use tessera::{ClientId, GrantId, SecretKey, TokenHash};

/// The keys under one prefix.
pub(crate) struct Keys {
    prefix: String,
}

impl Keys {
    /// Keys under `prefix`, which the builder has checked holds no `{` or `}`.
    pub(crate) fn new(prefix: String) -> Self {
        Self { prefix }
    }

    pub(crate) fn prefix(&self) -> &str {
        &self.prefix
    }

    pub(crate) fn client(&self, id: &ClientId) -> String {
        format!("{}client:{}", self.prefix, id.as_str())
    }

    pub(crate) fn clients(&self) -> String {
        format!("{}clients", self.prefix)
    }

    /// `<prefix>clients:changed`: the pub/sub channel client writes are
    /// published on (a channel, not a key).
    pub(crate) fn clients_channel(&self) -> String {
        format!("{}clients:changed", self.prefix)
    }

    /// `<prefix>dynamic-clients`: the sorted set counting dynamically
    /// registered clients (RFC 7591) for the cap.
    pub(crate) fn dynamic_clients(&self) -> String {
        format!("{}dynamic-clients", self.prefix)
    }

    /// `<prefix>{<grant>}`, the hash tag all keys of one grant share, with
    /// room for `tail` more bytes: every issued token builds two such keys,
    /// so they are written straight into one buffer (no `format!`, no
    /// intermediate strings).
    fn grant_tag(&self, grant: &GrantId, tail: usize) -> String {
        // 16 bytes are 22 base64 characters.
        let mut key = String::with_capacity(self.prefix.len() + 24 + tail);
        key.push_str(&self.prefix);
        key.push('{');
        URL_SAFE_NO_PAD.encode_string(grant.0, &mut key);
        key.push('}');
        key
    }

    /// `<prefix>{<grant>}:<name>`: one of a grant's sorted indexes (`ai`
    /// access tokens, `ri` retired refresh tokens) that keep it within the
    /// core's per-grant bounds (`prelude.lua`, `index_add`).
    pub(crate) fn index(&self, grant: &GrantId, name: &str) -> String {
        let mut key = self.grant_tag(grant, 1 + name.len());
        key.push(':');
        key.push_str(name);
        key
    }

    pub(crate) fn meta(&self, grant: &GrantId) -> String {
        let mut key = self.grant_tag(grant, 2);
        key.push_str(":g");
        key
    }

    /// `<prefix>u:<hash>`: a user code's index entry, naming its device
    /// record (in the device code's grant slot, so a separate step).
    pub(crate) fn user_code(&self, user_code: &TokenHash) -> String {
        format!("{}u:{}", self.prefix, user_code.to_key())
    }

    /// `<prefix>r:<namespace>:<hash>`: a replay cache entry (one key, so
    /// any cluster slot).
    pub(crate) fn replay(&self, key: &ReplayKey) -> String {
        format!("{}r:{}", self.prefix, key.to_key())
    }

    /// `<prefix>{<grant>}:<kind>:<hash>`: a record of the grant.
    pub(crate) fn record(&self, kind: char, key: &SecretKey) -> String {
        // 32 bytes are 43 base64 characters.
        let mut out = self.grant_tag(&key.grant, 3 + 43);
        out.push(':');
        out.push(kind);
        out.push(':');
        URL_SAFE_NO_PAD.encode_string(key.hash.0, &mut out);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The layout stored data already has: built in one buffer, the keys
    /// must be exactly what `format!` over `to_key` made.
    #[test]
    fn grant_keys_keep_their_layout() {
        let keys = Keys::new("tessera:".to_owned());
        let grant = GrantId([7; 16]);
        let hash = TokenHash([0xfb; 32]);
        assert_eq!(
            keys.meta(&grant),
            format!("tessera:{{{}}}:g", grant.to_key())
        );
        assert_eq!(
            keys.record('a', &SecretKey { grant, hash }),
            format!("tessera:{{{}}}:a:{}", grant.to_key(), hash.to_key())
        );
        let meta = keys.meta(&grant);
        assert_eq!(meta.capacity(), meta.len(), "sized exactly");
    }
}
