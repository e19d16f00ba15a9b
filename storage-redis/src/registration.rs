//! Dynamically registered clients (RFC 7591) in Redis.
//!
//! A dynamic client is stored like any client, at `<prefix>client:<id>`,
//! but with an absolute expiry (`PXAT`) at its `unused_until`, so Redis
//! forgets expired registrations by itself; recording a token issued to it
//! rewrites the record with the later expiry (or none, when the policy
//! keeps used clients). The sorted set
//! `<prefix>dynamic-clients` counts them for the cap: member = client id,
//! score = `unused_until` in ms, or `+inf` for none. The cap is enforced by
//! one script on that set (expired members dropped, counted, the new one
//! added), so racing registrations on any number of instances never exceed
//! it; the client record is written next (another key, another cluster
//! slot, so another command). An instance that dies between the two leaves
//! a reservation that lapses at its score.

use redis::Value;
use time::OffsetDateTime;

use tessera::{Client, ClientId, ClientRegistry, RegisterOutcome, StoreError};

use crate::scripts::bytes;
use crate::store::{RedisStore, encode, epoch_ms, pxat};

/// The score of a client without `unused_until`: it never lapses.
const USED: &str = "+inf";

/// How many of the registrations nearest their deadline one eviction
/// looks at (others may be claimed by instances evicting at once).
const EVICT_CANDIDATES: u32 = 8;

/// How many times marking a client used reads its record again after
/// another writer replaced it between the read and the write.
const MARK_ATTEMPTS: u32 = 4;

impl RedisStore {
    /// [`ClientRegistry::register_client`]: reserve a place in the set, then
    /// write the record unless the id is taken (then give the place back).
    pub(crate) async fn register_dynamic(
        &self,
        client: Client,
        max_dynamic: usize,
        now: OffsetDateTime,
    ) -> Result<RegisterOutcome, StoreError> {
        let until = client.registration.as_ref().and_then(|r| r.unused_until);
        let score = until.map_or_else(|| USED.to_owned(), |t| epoch_ms(t).to_string());
        let set = self.keys().dynamic_clients();
        let id = client.id.as_str().to_owned();
        let reply = self
            .eval_script(
                &self.scripts().reserve_client,
                &[&set],
                &[
                    &epoch_ms(now).to_string(),
                    &max_dynamic.to_string(),
                    &id,
                    &score,
                ],
            )
            .await?;
        match reply.tag.as_str() {
            "ok" => {}
            "full" => return Ok(RegisterOutcome::CapReached),
            "taken" => return Ok(RegisterOutcome::IdTaken),
            _ => return Err(reply.unexpected()),
        }
        let json = encode(&client)?;
        let key = self.keys().client(&client.id);
        let mut set_cmd = redis::cmd("SET");
        set_cmd.arg(&key).arg(json).arg("NX");
        if let Some(until) = until {
            set_cmd.arg("PXAT").arg(pxat(until));
        }
        let written = self.exec(&set_cmd).await;
        match written {
            Ok(Value::Nil) => {
                // A client the embedder registered has this id.
                self.exec(redis::cmd("ZREM").arg(&set).arg(&id)).await?;
                Ok(RegisterOutcome::IdTaken)
            }
            Ok(_) => {
                self.client_written(&client.id).await;
                Ok(RegisterOutcome::Registered)
            }
            Err(e) => {
                // Give the place back if we can; it lapses at its score anyway.
                let _ = self.exec(redis::cmd("ZREM").arg(&set).arg(&id)).await;
                Err(e)
            }
        }
    }

    /// [`ClientRegistry::dynamic_client_count`]: `ZCOUNT` of the live ones.
    pub(crate) async fn count_dynamic(&self, now: OffsetDateTime) -> Result<u64, StoreError> {
        let set = self.keys().dynamic_clients();
        let min = format!("({}", epoch_ms(now));
        match self
            .exec(redis::cmd("ZCOUNT").arg(&set).arg(min).arg(USED))
            .await?
        {
            Value::Int(n) => Ok(u64::try_from(n).unwrap_or(0)),
            _ => Err(StoreError::other("unexpected reply to ZCOUNT")),
        }
    }

    /// [`ClientRegistry::mark_client_used`]: the record rewritten with its
    /// new `unused_until` ([`DynamicRegistration::mark_used`]) and the
    /// key's expiry at it (none for none), then its score moved to it
    /// (`score_client.lua`: a slower instance never lowers it; a client
    /// kept for good, at `+inf`, gets the deadline). The record is
    /// read from Redis (not from the client cache) and written back only
    /// if it is still the one read (a compare-and-set script), so a copy
    /// that went stale, in the cache or because another writer replaced
    /// the record meanwhile, never overwrites a newer one; on a change it
    /// is read again.
    ///
    /// [`DynamicRegistration::mark_used`]: tessera::DynamicRegistration::mark_used
    pub(crate) async fn mark_dynamic_used(
        &self,
        id: &ClientId,
        now: OffsetDateTime,
        until: Option<OffsetDateTime>,
    ) -> Result<(), StoreError> {
        let key = self.keys().client(id);
        let mut attempts = 0;
        let marked = loop {
            let Some((read, mut client)) = self.read_client_record(&key).await? else {
                return Ok(());
            };
            if client.id != *id {
                return Err(StoreError::corrupt(format!(
                    "{key} holds client {:?}",
                    client.id.as_str()
                )));
            }
            // Registered by the embedder, expired, or marked already: done.
            let Some(r) = client.registration.as_mut() else {
                return Ok(());
            };
            if !r.mark_used(now, until) {
                return Ok(());
            }
            let marked = r.unused_until;
            let used = encode(&client)?;
            let expiry = marked.map(|t| pxat(t).to_string()).unwrap_or_default();
            let reply = self
                .eval_script(
                    &self.scripts().mark_client_used,
                    &[&key],
                    &[&read, &used, &expiry],
                )
                .await?
                .check(&key)?;
            match reply.tag.as_str() {
                "ok" => break marked,
                // It expired (or was removed) meanwhile: nothing to mark.
                "gone" => return Ok(()),
                "changed" if attempts < MARK_ATTEMPTS => attempts += 1,
                "changed" => {
                    return Err(StoreError::other(format!(
                        "{key} kept changing while it was marked used"
                    )));
                }
                _ => return Err(reply.unexpected()),
            }
        };
        self.score_dynamic(id, marked).await?;
        self.client_written(id).await;
        Ok(())
    }

    /// [`ClientRegistry::expire_unused_clients`]: every member whose score
    /// is at or before `now` is removed with its record, unless the record
    /// says it was used meanwhile (then its score is raised to the
    /// record's deadline).
    pub(crate) async fn expire_dynamic(&self, now: OffsetDateTime) -> Result<u64, StoreError> {
        let set = self.keys().dynamic_clients();
        let ids = match self
            .exec(
                redis::cmd("ZRANGEBYSCORE")
                    .arg(&set)
                    .arg("-inf")
                    .arg(epoch_ms(now))
                    .arg("LIMIT")
                    .arg(0)
                    .arg(10_000),
            )
            .await?
        {
            Value::Array(items) => items,
            _ => return Err(StoreError::other("unexpected reply to ZRANGEBYSCORE")),
        };
        let mut removed = 0;
        for item in ids {
            let Some(id) = crate::scripts::bytes(item)
                .and_then(|b| String::from_utf8(b).ok())
                .and_then(ClientId::new)
            else {
                continue;
            };
            let gone = match self.client(&id).await? {
                Some(c) if c.is_dynamically_registered() && !c.is_live(now) => {
                    self.exec(redis::cmd("DEL").arg(self.keys().client(&id)))
                        .await?;
                    self.client_written(&id).await;
                    true
                }
                Some(c) if c.is_dynamically_registered() => {
                    // Live with a later deadline than its score (an update
                    // was lost): the score follows the record again.
                    let until = c.registration.as_ref().and_then(|r| r.unused_until);
                    self.score_dynamic(&id, until).await?;
                    false
                }
                Some(_) => false,
                // Redis expired it already.
                None => true,
            };
            if gone {
                self.exec(redis::cmd("ZREM").arg(&set).arg(id.as_str()))
                    .await?;
                removed += 1;
            }
        }
        Ok(removed)
    }

    /// [`ClientRegistry::evict_unused_client`]: among the set's lowest
    /// scores before `before`, the first whose record is still due is
    /// claimed with `ZREM` (so instances evicting at once each take a
    /// different one) and its record deleted only if it is still the one
    /// read (compare-and-delete). A record used meanwhile gets its score
    /// back; a member without a record whose score is still ahead is a
    /// registration under way, left alone.
    pub(crate) async fn evict_dynamic(
        &self,
        before: OffsetDateTime,
    ) -> Result<Option<ClientId>, StoreError> {
        let set = self.keys().dynamic_clients();
        let candidates = match self
            .exec(
                redis::cmd("ZRANGEBYSCORE")
                    .arg(&set)
                    .arg("-inf")
                    .arg(format!("({}", epoch_ms(before)))
                    .arg("LIMIT")
                    .arg(0)
                    .arg(EVICT_CANDIDATES),
            )
            .await?
        {
            Value::Array(items) => items,
            _ => return Err(StoreError::other("unexpected reply to ZRANGEBYSCORE")),
        };
        let now = OffsetDateTime::now_utc();
        for member in candidates {
            let Some(text) = bytes(member).and_then(|b| String::from_utf8(b).ok()) else {
                continue;
            };
            let Some(id) = ClientId::new(&text) else {
                self.exec(redis::cmd("ZREM").arg(&set).arg(&text)).await?;
                continue;
            };
            let key = self.keys().client(&id);
            // None: lapsed (the key expired at its deadline), or a
            // registration whose record is not written yet; a corrupt
            // record is skipped, not repaired here.
            let Ok(Some((read, client))) = self.read_client_record(&key).await else {
                continue;
            };
            let until = client.registration.as_ref().and_then(|r| r.unused_until);
            if !client.is_dynamically_registered() {
                continue;
            }
            match until {
                Some(t) if t > now && t < before => {}
                // Lapsed: Redis forgets it by itself.
                Some(t) if t <= now => continue,
                // Used meanwhile: its score follows the record.
                _ => {
                    self.score_dynamic(&id, until).await?;
                    continue;
                }
            }
            // The claim: of instances evicting at once, one removes it.
            let claimed = matches!(
                self.exec(redis::cmd("ZREM").arg(&set).arg(id.as_str()))
                    .await?,
                Value::Int(1)
            );
            if !claimed {
                continue;
            }
            let reply = self
                .eval_script(&self.scripts().evict_client, &[&key], &[&read])
                .await?
                .check(&key)?;
            match reply.tag.as_str() {
                "ok" | "gone" => {
                    self.client_written(&id).await;
                    return Ok(Some(id));
                }
                // Written meanwhile (used): it counts again.
                "changed" => {
                    let fresh = self.read_client_record(&key).await?;
                    let until = fresh
                        .as_ref()
                        .and_then(|(_, c)| c.registration.as_ref())
                        .and_then(|r| r.unused_until);
                    self.score_dynamic(&id, until).await?;
                }
                _ => return Err(reply.unexpected()),
            }
        }
        Ok(None)
    }

    /// A client's record read from Redis, never the client cache: its
    /// text (for a compare-and-set) and the client; `None` when absent.
    async fn read_client_record(&self, key: &str) -> Result<Option<(String, Client)>, StoreError> {
        let read = match self.exec(redis::cmd("GET").arg(key)).await? {
            Value::Nil => return Ok(None),
            v => bytes(v)
                .and_then(|b| String::from_utf8(b).ok())
                .ok_or_else(|| StoreError::corrupt(format!("{key}: not a text record")))?,
        };
        let client = serde_json::from_str(&read)
            .map_err(|e| StoreError::corrupt(format!("client does not decode: {e}")))?;
        Ok(Some((read, client)))
    }

    /// A dynamic client's score follows its record's deadline
    /// (`score_client.lua`: raised only, `+inf` lowered, a lost member
    /// added back).
    async fn score_dynamic(
        &self,
        id: &ClientId,
        until: Option<OffsetDateTime>,
    ) -> Result<(), StoreError> {
        let score = until.map_or_else(|| USED.to_owned(), |t| epoch_ms(t).to_string());
        let set = self.keys().dynamic_clients();
        self.eval_script(
            &self.scripts().score_client,
            &[&set],
            &[&score, id.as_str()],
        )
        .await?
        .check(&set)
        .map(drop)
    }

    /// After a write to a client's key: every store's client cache drops
    /// its copy ([`RedisStore::client_changed`]). A failed publish is
    /// logged, not returned: the write itself happened, the server checks a
    /// registration's expiry on every read, and a stale copy's expiry only
    /// means one more `mark_client_used` until the cache TTL ends.
    async fn client_written(&self, id: &ClientId) {
        if let Err(e) = self.client_changed(id).await {
            tracing::warn!(client = %id, error = %e, "client cache invalidation not published");
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_used_score_sorts_after_every_expiry() {
        assert_eq!(super::USED, "+inf");
    }
}
