//! DPoP-bound access tokens at a remote resource server (RFC 9449 §7):
//! what both verifiers do once the token itself is valid.

use std::fmt;
use std::sync::Arc;

use tessera::storage::ReplayStore;
use tessera::{
    AccessToken, BearerError, DpopError, DpopPolicy, RemoteResource, ResourceRequest, TokenScheme,
    remember_dpop_proof,
};
use time::OffsetDateTime;

use crate::replay::MemoryReplayCache;

/// How a verifier checks DPoP proofs: the acceptance policy (`iat`
/// window, server nonces) and the replay cache of their `jti`s.
#[derive(Clone)]
pub(crate) struct DpopCheck {
    pub(crate) policy: DpopPolicy,
    pub(crate) replay: Arc<dyn ReplayStore>,
}

impl Default for DpopCheck {
    fn default() -> Self {
        Self {
            policy: DpopPolicy::default(),
            replay: Arc::new(MemoryReplayCache::default()),
        }
    }
}

impl fmt::Debug for DpopCheck {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DpopCheck")
            .field("policy", &self.policy)
            .finish_non_exhaustive()
    }
}

impl DpopCheck {
    /// `access` (valid) as `request` presents it with `scheme`: a bound
    /// token only with a proof by its key ([`RemoteResource::check_presentation`]),
    /// whose `jti` is then used once (RFC 9449 §11.1), in that order so
    /// that only the holder of a bound token and its key fills the cache.
    pub(crate) async fn check(
        &self,
        resource: &RemoteResource,
        request: &ResourceRequest<'_>,
        scheme: TokenScheme,
        token: &str,
        access: AccessToken,
    ) -> Result<AccessToken, BearerError> {
        let now = OffsetDateTime::now_utc();
        let checked =
            resource.check_presentation(request, scheme, token, &access, &self.policy, now);
        let proof = match checked {
            Ok(None) => return Ok(access),
            Ok(Some(proof)) => proof,
            Err(e) => {
                tracing::debug!(error = %e, "DPoP presentation refused");
                return Err(e);
            }
        };
        match remember_dpop_proof(self.replay.as_ref(), &proof, &self.policy, now).await {
            Ok(()) => Ok(access),
            Err(DpopError::Unavailable(e)) => {
                // Logged where it arose; the proof is not accepted unchecked.
                Err(BearerError::Dpop(DpopError::Unavailable(e)))
            }
            Err(e) => {
                tracing::debug!(error = %e, "replayed DPoP proof refused");
                Err(BearerError::Dpop(e))
            }
        }
    }
}
