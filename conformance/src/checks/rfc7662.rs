//! RFC 7662: token introspection.

use serde_json::Value;

use crate::demo::{ALICE, BACKUP_JOB, PRINTSHOP};
use crate::flow;
use crate::http::Auth;
use crate::{CheckResult, Ctx, Target};

fn sorted_scope(v: &Value) -> Vec<String> {
    let mut s: Vec<String> = v["scope"]
        .as_str()
        .unwrap_or_default()
        .split(' ')
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect();
    s.sort();
    s
}

/// photo-api introspects anyone's token: active, with `scope`, `client_id`,
/// `username` and `exp`; `Cache-Control: no-store`.
pub async fn photo_api_introspects_any_token(t: &Target) -> CheckResult {
    let ctx = Ctx::new(t).await?;
    let tokens = flow::tokens(&ctx, &PRINTSHOP, &ALICE, None).await?;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or_default();
    let (json, ex) = flow::introspect(&ctx, &tokens.access).await?;
    ex.ensure(json["active"] == true, "expected \"active\": true")?;
    ex.ensure(
        sorted_scope(&json) == ["photos.read", "profile"],
        "expected \"scope\": \"photos.read profile\"",
    )?;
    ex.ensure(
        json["client_id"] == "printshop",
        "expected \"client_id\": \"printshop\"",
    )?;
    ex.ensure(
        json["username"] == "alice",
        "expected \"username\": \"alice\"",
    )?;
    ex.ensure(
        json["exp"].as_i64().is_some_and(|e| e > now),
        "expected a numeric \"exp\" in the future",
    )?;
    let (json, ex) = flow::introspect(&ctx, tokens.refresh()?).await?;
    ex.ensure(
        json["active"] == true && json["client_id"] == "printshop",
        "a live refresh token introspects as active, client_id printshop",
    )?;
    let job = flow::client_token(&ctx, &BACKUP_JOB, None).await?;
    let (json, ex) = flow::introspect(&ctx, &job.access).await?;
    ex.ensure(
        json["active"] == true
            && json["client_id"] == "backup-job"
            && sorted_scope(&json) == ["photos.read"]
            && json["exp"].as_i64().is_some(),
        "expected active, client_id backup-job, scope photos.read, exp",
    )?;
    Ok(())
}

/// A confidential client introspects its own token: active.
pub async fn client_introspects_own_token(t: &Target) -> CheckResult {
    let ctx = Ctx::new(t).await?;
    let job = flow::client_token(&ctx, &BACKUP_JOB, None).await?;
    let (json, ex) = flow::introspect_as(&ctx, BACKUP_JOB.post(), &job.access).await?;
    ex.ensure(
        json["active"] == true && json["client_id"] == "backup-job",
        "backup-job's own token: expected active, client_id backup-job",
    )?;
    Ok(())
}

/// printshop introspecting backup-job's token: exactly `{"active": false}`.
pub async fn other_clients_token_is_inactive(t: &Target) -> CheckResult {
    let ctx = Ctx::new(t).await?;
    let job = flow::client_token(&ctx, &BACKUP_JOB, None).await?;
    let (json, ex) = flow::introspect_as(&ctx, PRINTSHOP.basic(), &job.access).await?;
    ex.ensure(
        json == serde_json::json!({"active": false}),
        "another client's token must answer exactly {\"active\": false}",
    )?;
    Ok(())
}

/// No client authentication, a wrong secret, or a public client naming
/// itself (it cannot authenticate): 401 `invalid_client`.
pub async fn unauthenticated_introspection_is_401(t: &Target) -> CheckResult {
    let ctx = Ctx::new(t).await?;
    let job = flow::client_token(&ctx, &BACKUP_JOB, None).await?;
    for auth in [
        Auth::Nothing,
        Auth::Basic("photo-api", "wrong-secret"),
        Auth::ClientId("photo-cli"),
    ] {
        let ex = ctx
            .http
            .post_form(
                &ctx.meta.introspection_endpoint,
                auth,
                &[("token", &job.access)],
            )
            .await?;
        ex.expect_oauth_error(401, "invalid_client")?;
    }
    Ok(())
}

/// Revoked and unknown tokens: `{"active": false}`.
pub async fn revoked_and_unknown_tokens_are_inactive(t: &Target) -> CheckResult {
    let ctx = Ctx::new(t).await?;
    let job = flow::client_token(&ctx, &BACKUP_JOB, None).await?;
    flow::revoke(&ctx, BACKUP_JOB.basic(), &job.access)
        .await?
        .expect_status(200)?;
    for token in [job.access.as_str(), "tsa_unknown", "garbage"] {
        let (json, ex) = flow::introspect(&ctx, token).await?;
        ex.ensure(
            json == serde_json::json!({"active": false}),
            "a revoked or unknown token must answer {\"active\": false}",
        )?;
    }
    Ok(())
}
