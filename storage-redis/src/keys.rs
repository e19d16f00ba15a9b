//! The key layout. Clients: `<prefix>client:<id>` and the `<prefix>clients`
//! set. Everything of one grant shares the hash tag `<prefix>{<grant>}`, hence
//! one cluster slot: `…:g` (grant meta), `…:<kind>:<hash>` (records).
//! Replay cache entries: `<prefix>r:<namespace>:<hash>`.

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

    /// `<prefix>{<grant>}`: the hash tag all keys of one grant share.
    fn grant_tag(&self, grant: &GrantId) -> String {
        format!("{}{{{}}}", self.prefix, grant.to_key())
    }

    pub(crate) fn meta(&self, grant: &GrantId) -> String {
        format!("{}:g", self.grant_tag(grant))
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

    pub(crate) fn record(&self, kind: char, key: &SecretKey) -> String {
        format!(
            "{}:{kind}:{}",
            self.grant_tag(&key.grant),
            key.hash.to_key()
        )
    }
}
