//! The Lua scripts of the grant steps (loaded once, run by `EVALSHA`) and
//! their replies.

use std::time::Duration;

use redis::{Script, Value};
use tessera::StoreError;

use crate::connection::{Conn, bounded};

/// A Lua script: the shared prelude followed by one step's body.
macro_rules! script {
    ($file:literal) => {
        concat!(
            include_str!("scripts/prelude.lua"),
            include_str!(concat!("scripts/", $file))
        )
    };
}

/// One Lua script: its text (for `EVAL` on a node that has not cached it)
/// and its `redis::Script` (for the SHA-1 used with `EVALSHA`).
pub(crate) struct Lua {
    code: &'static str,
    script: Script,
}

impl Lua {
    fn new(code: &'static str) -> Self {
        Self {
            code,
            script: Script::new(code),
        }
    }
}

/// The grant scripts, hashed once per store.
pub(crate) struct Scripts {
    pub(crate) put_code: Lua,
    pub(crate) take_code: Lua,
    pub(crate) issue: Lua,
    pub(crate) access_token: Lua,
    pub(crate) refresh_token: Lua,
    pub(crate) rotate_refresh: Lua,
    pub(crate) revoke_grant: Lua,
    pub(crate) poll_device: Lua,
    pub(crate) decide_device: Lua,
    pub(crate) reserve_client: Lua,
    pub(crate) mark_client_used: Lua,
    pub(crate) score_client: Lua,
    pub(crate) evict_client: Lua,
}

impl Scripts {
    pub(crate) fn new() -> Self {
        Self {
            put_code: Lua::new(script!("put_code.lua")),
            take_code: Lua::new(script!("take_code.lua")),
            issue: Lua::new(script!("issue.lua")),
            access_token: Lua::new(script!("access_token.lua")),
            refresh_token: Lua::new(script!("refresh_token.lua")),
            rotate_refresh: Lua::new(script!("rotate_refresh.lua")),
            revoke_grant: Lua::new(script!("revoke_grant.lua")),
            poll_device: Lua::new(script!("poll_device.lua")),
            decide_device: Lua::new(script!("decide_device.lua")),
            reserve_client: Lua::new(script!("reserve_client.lua")),
            mark_client_used: Lua::new(script!("mark_client_used.lua")),
            score_client: Lua::new(script!("score_client.lua")),
            evict_client: Lua::new(script!("evict_client.lua")),
        }
    }
}

/// One script run: `EVALSHA`, or `EVAL` when the node has not cached the
/// script yet (after a restart or `SCRIPT FLUSH`). Bounded as a whole by
/// `timeout`.
pub(crate) async fn eval(
    conn: &Conn,
    timeout: Duration,
    lua: &Lua,
    keys: &[&str],
    args: &[&str],
) -> Result<Reply, StoreError> {
    let build = |name: &str, first: &[u8]| {
        let mut cmd = redis::cmd(name);
        cmd.arg(first).arg(keys.len()).arg(keys);
        cmd.arg(args);
        cmd
    };
    let evalsha = build("EVALSHA", lua.script.get_hash().as_bytes());
    let run = async {
        match conn.query(&evalsha).await {
            Err(e) if e.kind() == redis::ErrorKind::Server(redis::ServerErrorKind::NoScript) => {
                conn.query(&build("EVAL", lua.code.as_bytes())).await
            }
            other => other,
        }
    };
    let value = bounded(timeout, run).await?;
    Reply::parse(value)
}

/// A script's answer: a tag and an optional payload.
pub(crate) struct Reply {
    pub(crate) tag: String,
    payload: Option<Vec<u8>>,
}

/// The bytes of a string reply.
pub(crate) fn bytes(v: Value) -> Option<Vec<u8>> {
    match v {
        Value::BulkString(b) => Some(b),
        Value::SimpleString(s) => Some(s.into_bytes()),
        Value::VerbatimString { text, .. } => Some(text.into_bytes()),
        _ => None,
    }
}

impl Reply {
    fn parse(v: Value) -> Result<Self, StoreError> {
        let unexpected = || StoreError::other("unexpected reply from a tessera script");
        let Value::Array(items) = v else {
            return Err(unexpected());
        };
        let mut items = items.into_iter();
        let tag = items
            .next()
            .and_then(bytes)
            .and_then(|b| String::from_utf8(b).ok())
            .ok_or_else(unexpected)?;
        let payload = items.next().and_then(bytes);
        Ok(Self { tag, payload })
    }

    /// The payload of a reply that must carry one.
    pub(crate) fn record(self) -> Result<Vec<u8>, StoreError> {
        self.payload.ok_or_else(|| {
            StoreError::other(format!(
                "tessera script answered {:?} without a record",
                self.tag
            ))
        })
    }

    /// Fails with `Corrupt` for a `corrupt` reply, naming the key.
    pub(crate) fn check(self, key: &str) -> Result<Self, StoreError> {
        if self.tag == "corrupt" {
            let why = self
                .payload
                .map(|p| String::from_utf8_lossy(&p).into_owned())
                .unwrap_or_default();
            return Err(StoreError::corrupt(format!("{key}: {why}")));
        }
        Ok(self)
    }

    pub(crate) fn unexpected(self) -> StoreError {
        StoreError::other(format!("unexpected tessera script answer {:?}", self.tag))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The Lua prelude spells the core's per-grant bounds as numbers of its
    /// own: they must stay equal.
    #[test]
    fn the_lua_bounds_are_the_cores() {
        use tessera::storage::{MAX_ACCESS_TOKENS_PER_GRANT, MAX_RETIRED_REFRESH_PER_GRANT};
        let prelude = include_str!("scripts/prelude.lua");
        assert!(prelude.contains(&format!(
            "local MAX_ACCESS_PER_GRANT = {MAX_ACCESS_TOKENS_PER_GRANT}\n"
        )));
        assert!(prelude.contains(&format!(
            "local MAX_RETIRED_PER_GRANT = {MAX_RETIRED_REFRESH_PER_GRANT}\n"
        )));
    }

    #[test]
    fn scripts_carry_the_prelude() {
        let s = Scripts::new();
        for lua in [
            &s.put_code,
            &s.take_code,
            &s.issue,
            &s.access_token,
            &s.refresh_token,
            &s.rotate_refresh,
            &s.revoke_grant,
            &s.reserve_client,
            &s.mark_client_used,
            &s.score_client,
            &s.evict_client,
        ] {
            assert!(lua.code.contains("local function meta_ok"));
            assert_eq!(lua.script.get_hash().len(), 40);
        }
    }

    #[test]
    fn corrupt_replies_name_the_key() {
        let r = Reply {
            tag: "corrupt".into(),
            payload: Some(b"why".to_vec()),
        };
        match r.check("k") {
            Err(StoreError::Corrupt(m)) => assert_eq!(m.to_string(), "k: why"),
            other => panic!("{:?}", other.map(|r| r.tag)),
        }
        assert!(Reply::parse(Value::Int(1)).is_err());
        assert!(Reply::parse(Value::Array(vec![])).is_err());
    }
}
