//! Consent stays with the embedder: the core only asks a policy whether the
//! consent page may be skipped, and tells it what the owner decided.

use async_trait::async_trait;

use crate::client::Client;
use crate::error::StoreError;
use crate::resource::ResourceIndicator;
use crate::scope::Scope;
use crate::storage::Subject;

/// Whether the owner must be asked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ConsentRequirement {
    /// Show the consent page.
    Prompt,
    /// Consent is already given (first-party client, remembered consent): issue the code.
    Granted,
}

/// The owner's answer on the consent page.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// The owner allows the client the requested scope.
    Allow,
    /// The owner refuses; the client gets `access_denied` (RFC 6749 §4.1.2.1).
    Deny,
}

/// Decides when the consent page may be skipped.
///
/// Every method is told the `resource` the grant is for (RFC 8707: its
/// tokens' audience; `None` when the server names no resource). A policy
/// that remembers consent must remember it per resource too: consent to a
/// client at one resource (the photo API) is not consent at another (an
/// MCP server that can act on the same photos).
#[async_trait]
pub trait ConsentPolicy: Send + Sync {
    /// Whether `owner` must be asked before `client` gets `scope` at `resource`.
    async fn requirement(
        &self,
        client: &Client,
        owner: &Subject,
        scope: &Scope,
        resource: Option<&ResourceIndicator>,
    ) -> Result<ConsentRequirement, StoreError>;

    /// [`requirement`](ConsentPolicy::requirement) when the policy can
    /// answer at once, without I/O (a fixed rule, a client flag): the
    /// server asks here first, which spares it `requirement`'s boxed future
    /// on every authorization. `None` means "ask `requirement`": the
    /// default, always correct. A policy answering `Some` must answer what
    /// `requirement` would.
    fn requirement_at_hand(
        &self,
        client: &Client,
        owner: &Subject,
        scope: &Scope,
        resource: Option<&ResourceIndicator>,
    ) -> Option<ConsentRequirement> {
        let _ = (client, owner, scope, resource);
        None
    }

    /// Whether [`record`](ConsentPolicy::record) keeps anything. A policy
    /// that remembers nothing answers `false`, and the server then skips
    /// loading the client to call it (one store read fewer per consent).
    fn records_decisions(&self) -> bool {
        true
    }

    /// Called after the owner decided on the consent page, e.g. to remember an `Allow`.
    async fn record(
        &self,
        _client: &Client,
        _owner: &Subject,
        _scope: &Scope,
        _resource: Option<&ResourceIndicator>,
        _decision: Decision,
    ) -> Result<(), StoreError> {
        Ok(())
    }
}

/// Always show the consent page: the safe default.
#[derive(Debug, Clone, Copy, Default)]
pub struct AlwaysPrompt;

#[async_trait]
impl ConsentPolicy for AlwaysPrompt {
    fn records_decisions(&self) -> bool {
        false
    }

    async fn requirement(
        &self,
        _: &Client,
        _: &Subject,
        _: &Scope,
        _: Option<&ResourceIndicator>,
    ) -> Result<ConsentRequirement, StoreError> {
        Ok(ConsentRequirement::Prompt)
    }

    /// A fixed rule: always at hand.
    fn requirement_at_hand(
        &self,
        _: &Client,
        _: &Subject,
        _: &Scope,
        _: Option<&ResourceIndicator>,
    ) -> Option<ConsentRequirement> {
        Some(ConsentRequirement::Prompt)
    }
}

/// Skip the page for clients registered as first-party; ask for everyone else.
#[derive(Debug, Clone, Copy, Default)]
pub struct SkipForFirstParty;

#[async_trait]
impl ConsentPolicy for SkipForFirstParty {
    fn records_decisions(&self) -> bool {
        false
    }

    async fn requirement(
        &self,
        client: &Client,
        _: &Subject,
        _: &Scope,
        _: Option<&ResourceIndicator>,
    ) -> Result<ConsentRequirement, StoreError> {
        Ok(if client.first_party {
            ConsentRequirement::Granted
        } else {
            ConsentRequirement::Prompt
        })
    }

    /// The client's flag: always at hand.
    fn requirement_at_hand(
        &self,
        client: &Client,
        _: &Subject,
        _: &Scope,
        _: Option<&ResourceIndicator>,
    ) -> Option<ConsentRequirement> {
        Some(if client.first_party {
            ConsentRequirement::Granted
        } else {
            ConsentRequirement::Prompt
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::client::{ClientId, SecretHash};

    /// The built-in policies answer at hand exactly what `requirement`
    /// answers, for first-party clients and others.
    #[tokio::test]
    async fn built_in_policies_answer_at_hand_as_async() {
        let owner = Subject::new("alice");
        let scope = Scope::parse("a").unwrap();
        for first_party in [false, true] {
            let client =
                Client::confidential(ClientId::new("c").unwrap(), "C", SecretHash::of("s"))
                    .with_first_party(first_party);
            let policies: [&dyn ConsentPolicy; 2] = [&AlwaysPrompt, &SkipForFirstParty];
            for policy in policies {
                let at_hand = policy.requirement_at_hand(&client, &owner, &scope, None);
                let awaited = policy.requirement(&client, &owner, &scope, None).await.ok();
                assert!(at_hand.is_some());
                assert_eq!(at_hand, awaited);
            }
        }
        assert_eq!(
            SkipForFirstParty.requirement_at_hand(
                &Client::confidential(ClientId::new("c").unwrap(), "C", SecretHash::of("s"))
                    .with_first_party(true),
                &owner,
                &scope,
                None
            ),
            Some(ConsentRequirement::Granted)
        );
    }
}
