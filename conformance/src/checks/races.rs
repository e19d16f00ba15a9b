//! Many racers on one code or one refresh token: at most once, exactly once.

use std::collections::BTreeMap;

use crate::demo::{ALICE, PRINTSHOP};
use crate::flow;
use crate::http::Exchange;
use crate::{CheckResult, Ctx, Failure, Target};

/// How many racers.
pub const RACERS: usize = 200;

/// Runs `RACERS` copies of `make()` at once on the multi-threaded runtime
/// (all released together by a barrier); the answers in spawn order.
pub async fn race<F, Fut>(make: F) -> Result<Vec<Result<Exchange, Failure>>, Failure>
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = Result<Exchange, Failure>> + Send + 'static,
{
    let barrier = std::sync::Arc::new(tokio::sync::Barrier::new(RACERS));
    let handles: Vec<_> = (0..RACERS)
        .map(|_| {
            let fut = make();
            let barrier = barrier.clone();
            tokio::spawn(async move {
                barrier.wait().await;
                fut.await
            })
        })
        .collect();
    let mut out = Vec::with_capacity(RACERS);
    for h in handles {
        out.push(
            h.await
                .map_err(|e| Failure::new(format!("a racer panicked: {e}")))?,
        );
    }
    Ok(out)
}

/// Exactly one 200, every other answer 400 `invalid_grant`; returns the
/// winner. The failure counts every other kind of answer, with an example.
pub fn one_winner(
    results: Vec<Result<Exchange, Failure>>,
    what: &str,
) -> Result<Exchange, Failure> {
    let mut winners = Vec::new();
    let mut others: BTreeMap<String, (usize, String)> = BTreeMap::new();
    for r in results {
        match r {
            Ok(ex) if ex.status == 200 => winners.push(ex),
            Ok(ex) => {
                let code = ex
                    .json()
                    .ok()
                    .and_then(|j| j.get("error").and_then(|e| e.as_str()).map(str::to_owned))
                    .unwrap_or_default();
                if ex.status == 400 && code == "invalid_grant" {
                    continue;
                }
                let e = others
                    .entry(format!("{} {code}", ex.status))
                    .or_insert((0, ex.describe()));
                e.0 += 1;
            }
            Err(f) => {
                let e = others
                    .entry("transport failure".into())
                    .or_insert((0, f.to_string()));
                e.0 += 1;
            }
        }
    }
    if winners.len() != 1 || !others.is_empty() {
        let mut s = format!(
            "{RACERS} concurrent {what}: expected exactly one 200 and {} × 400 invalid_grant; got {} × 200",
            RACERS - 1,
            winners.len()
        );
        for (k, (n, example)) in &others {
            s.push_str(&format!("\n{n} × {k}, e.g.:\n{example}"));
        }
        return Err(Failure::new(s));
    }
    winners.pop().ok_or_else(|| Failure::new("no winner"))
}

/// 200 concurrent redemptions of one code: exactly one 200, the rest
/// `invalid_grant`; the replays revoke the grant, so the winner's tokens are
/// dead afterwards.
pub async fn concurrent_code_redemptions_one_winner(t: &Target) -> CheckResult {
    let ctx = Ctx::new(t).await?;
    let grant = flow::authorize(&ctx.fresh_browser()?, &PRINTSHOP, &ALICE, None).await?;
    let results = race(|| {
        let ctx = ctx.clone();
        let grant = grant.clone();
        async move { flow::redeem(&ctx, &grant, PRINTSHOP.basic()).await }
    })
    .await?;
    let winner = flow::expect_tokens(&one_winner(results, "redemptions of one code")?)?;
    flow::expect_active(
        &ctx,
        &winner.access,
        false,
        "the winner's access token after the code was replayed",
    )
    .await?;
    flow::expect_invalid_token(
        &flow::api(&ctx, &winner.access).await?,
        "the API with the winner's access token after the code was replayed",
    )?;
    flow::refresh(&ctx, PRINTSHOP.basic(), winner.refresh()?, None)
        .await?
        .expect_oauth_error(400, "invalid_grant")?;
    Ok(())
}

/// 200 concurrent uses of one refresh token: exactly one 200, the rest
/// `invalid_grant`; the reuse revokes the family, so the winner's new refresh
/// token fails and its access token is dead.
pub async fn concurrent_refreshes_one_winner(t: &Target) -> CheckResult {
    let ctx = Ctx::new(t).await?;
    let tokens = flow::tokens(&ctx, &PRINTSHOP, &ALICE, None).await?;
    let r1 = tokens.refresh()?.to_owned();
    let results = race(|| {
        let ctx = ctx.clone();
        let r1 = r1.clone();
        async move { flow::refresh(&ctx, PRINTSHOP.basic(), &r1, None).await }
    })
    .await?;
    let winner = flow::expect_tokens(&one_winner(results, "refreshes with one refresh token")?)?;
    flow::refresh(&ctx, PRINTSHOP.basic(), winner.refresh()?, None)
        .await?
        .expect_oauth_error(400, "invalid_grant")?;
    flow::expect_active(
        &ctx,
        &winner.access,
        false,
        "the winner's access token after refresh-token reuse",
    )
    .await?;
    flow::expect_active(
        &ctx,
        &tokens.access,
        false,
        "the first access token of the family after reuse",
    )
    .await?;
    Ok(())
}
