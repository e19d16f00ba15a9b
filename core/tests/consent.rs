//! Consent policies: skipping the page for first-party clients, and a
//! policy that remembers what it is told, per resource.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::Arc;

use common::*;
use tessera::{AuthorizeOutcome, Client, Decision, Scope, SkipForFirstParty, Subject};

#[tokio::test]
async fn consent_policy_may_skip_the_page() {
    let f = fixture_with(|b| b.consent(SkipForFirstParty));
    let q = auth_query(
        "cli",
        "&redirect_uri=http%3A%2F%2F127.0.0.1%3A4711%2Fcallback",
    );
    match f.server.authorize(&q, Some(&alice())).await {
        AuthorizeOutcome::Redirect(r) => assert!(
            r.location()
                .starts_with("http://127.0.0.1:4711/callback?code=")
        ),
        other => panic!("{other:?}"),
    }
    // Not first-party: still asked.
    assert!(matches!(
        f.server
            .authorize(&auth_query("shop", ""), Some(&alice()))
            .await,
        AuthorizeOutcome::Consent(_)
    ));
}

/// Remembers allowed (client, owner, resource) triples, and every decision
/// it is told.
#[derive(Default)]
struct Remember {
    allowed: std::sync::Mutex<Vec<(String, String, Option<String>)>>,
    told: std::sync::Mutex<Vec<Decision>>,
}

fn remembered(
    client: &Client,
    owner: &Subject,
    resource: Option<&tessera::ResourceIndicator>,
) -> (String, String, Option<String>) {
    (
        client.id.to_string(),
        owner.as_str().to_owned(),
        resource.map(|r| r.as_str().to_owned()),
    )
}

#[async_trait::async_trait]
impl tessera::ConsentPolicy for Remember {
    async fn requirement(
        &self,
        client: &Client,
        owner: &Subject,
        _: &Scope,
        resource: Option<&tessera::ResourceIndicator>,
    ) -> Result<tessera::ConsentRequirement, tessera::StoreError> {
        let key = remembered(client, owner, resource);
        Ok(if self.allowed.lock().unwrap().contains(&key) {
            tessera::ConsentRequirement::Granted
        } else {
            tessera::ConsentRequirement::Prompt
        })
    }

    async fn record(
        &self,
        client: &Client,
        owner: &Subject,
        _: &Scope,
        resource: Option<&tessera::ResourceIndicator>,
        decision: Decision,
    ) -> Result<(), tessera::StoreError> {
        self.told.lock().unwrap().push(decision);
        if decision == Decision::Allow {
            let key = remembered(client, owner, resource);
            self.allowed.lock().unwrap().push(key);
        }
        Ok(())
    }
}

#[tokio::test]
async fn a_recording_consent_policy_is_told_each_decision() {
    let policy = Arc::new(Remember::default());
    struct Shared(Arc<Remember>);
    #[async_trait::async_trait]
    impl tessera::ConsentPolicy for Shared {
        async fn requirement(
            &self,
            c: &Client,
            o: &Subject,
            s: &Scope,
            r: Option<&tessera::ResourceIndicator>,
        ) -> Result<tessera::ConsentRequirement, tessera::StoreError> {
            self.0.requirement(c, o, s, r).await
        }
        async fn record(
            &self,
            c: &Client,
            o: &Subject,
            s: &Scope,
            r: Option<&tessera::ResourceIndicator>,
            d: Decision,
        ) -> Result<(), tessera::StoreError> {
            self.0.record(c, o, s, r, d).await
        }
    }
    let f = fixture_with(|b| b.consent(Shared(policy.clone())));
    // Denied first: told, nothing remembered, asked again.
    let denied = authorize(&f, "shop", "", Decision::Deny).await;
    assert_eq!(
        query_param(&denied, "error").as_deref(),
        Some("access_denied")
    );
    let location = authorize(&f, "shop", "", Decision::Allow).await;
    assert!(query_param(&location, "code").is_some());
    assert_eq!(
        *policy.told.lock().unwrap(),
        [Decision::Deny, Decision::Allow]
    );
    // Remembered: the next request skips the page.
    match f
        .server
        .authorize(&auth_query("shop", ""), Some(&alice()))
        .await
    {
        AuthorizeOutcome::Redirect(r) => assert!(query_param(r.location(), "code").is_some()),
        other => panic!("{other:?}"),
    }
    // The built-in policies keep nothing, so the server need not call them.
    assert!(!tessera::ConsentPolicy::records_decisions(
        &SkipForFirstParty
    ));
    assert!(tessera::ConsentPolicy::records_decisions(&Shared(policy)));
}

/// Consent is to a client at a resource: the consent page names the grant's
/// resource, and the policy is told it, so that a policy remembering an
/// `Allow` at the photo API does not grant the MCP server unasked.
#[tokio::test]
async fn consent_is_asked_and_remembered_per_resource() {
    let api = tessera::ResourceIndicator::new("https://as.example/api").unwrap();
    let mcp = tessera::ResourceIndicator::new("https://as.example/mcp").unwrap();
    let f = fixture_with(|b| {
        b.default_resource(api.clone())
            .resource(mcp.clone())
            .consent(Remember::default())
    });
    // Allowed at the API (the default resource), the page naming it.
    let AuthorizeOutcome::Consent(p) = f
        .server
        .authorize(&auth_query("shop", ""), Some(&alice()))
        .await
    else {
        panic!("a consent page")
    };
    assert_eq!(p.resource.as_ref(), Some(&api));
    assert!(matches!(
        f.server.decide(&p.handle, &alice(), Decision::Allow).await,
        AuthorizeOutcome::Redirect(_)
    ));
    // Remembered there...
    assert!(matches!(
        f.server
            .authorize(&auth_query("shop", ""), Some(&alice()))
            .await,
        AuthorizeOutcome::Redirect(_)
    ));
    // ...but the MCP server is asked for, by name.
    let extra = "&resource=https%3A%2F%2Fas.example%2Fmcp";
    let AuthorizeOutcome::Consent(p) = f
        .server
        .authorize(&auth_query("shop", extra), Some(&alice()))
        .await
    else {
        panic!("the MCP server needs its own consent")
    };
    assert_eq!(p.resource.as_ref(), Some(&mcp));
}
