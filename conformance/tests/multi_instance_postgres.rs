//! Two `photo-provider` processes sharing one PostgreSQL database (a fresh
//! one on the server `TESSERA_POSTGRES_URL` names): a code issued through A
//! is redeemed at B, and 200 racers redeeming one code across both get one
//! winner. (The outage and restart behaviour of the store is covered by
//! `storage-postgres/tests/faults.rs`.) Without `TESSERA_POSTGRES_URL` the
//! test fails, unless `TESSERA_POSTGRES_SKIP=1`.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use sqlx::migrate::MigrateDatabase;
use tessera_conformance::checks::races::{RACERS, one_winner, race};
use tessera_conformance::demo::{ALICE, PRINTSHOP};
use tessera_conformance::flow;
use tessera_conformance::{CheckResult, Ctx, Failure, ProviderProcess, ensure, locate_binary};

/// A fresh database's URL; `None` skips (only with `TESSERA_POSTGRES_SKIP=1`).
async fn fresh_database() -> Result<Option<String>, Failure> {
    let base = match std::env::var("TESSERA_POSTGRES_URL") {
        Ok(v) if !v.trim().is_empty() => v.trim().to_owned(),
        _ if std::env::var("TESSERA_POSTGRES_SKIP").is_ok_and(|v| v == "1") => return Ok(None),
        _ => panic!(
            "TESSERA_POSTGRES_URL is not set: this test runs two providers on PostgreSQL. Start \
             one with `eval \"$(storage-postgres/scripts/postgres-up.sh)\"`, or set \
             TESSERA_POSTGRES_SKIP=1 to skip."
        ),
    };
    let mut url = url::Url::parse(&base)
        .map_err(|e| Failure::new(format!("TESSERA_POSTGRES_URL is not a URL: {e}")))?;
    url.set_path(&format!("/multi_instance_{:08x}", rand::random::<u32>()));
    sqlx::Postgres::create_database(url.as_str())
        .await
        .map_err(|e| Failure::new(format!("cannot create a database: {e}")))?;
    Ok(Some(url.to_string()))
}

/// Instance `i`'s context: its metadata must name A's issuer; every endpoint
/// is moved to where `i` listens.
async fn ctx_at(providers: &[ProviderProcess], i: usize) -> Result<Ctx, Failure> {
    let mut ctx = Ctx::new(providers[i].target()).await?;
    let issuer = providers[0].target().base_url.clone();
    ctx.meta.exchange.ensure(
        ctx.meta.issuer == issuer,
        format!(
            "instance {i} must issue as {issuer}, its metadata says {:?}",
            ctx.meta.issuer
        ),
    )?;
    let base = providers[i].target().base_url.clone();
    for endpoint in [
        &mut ctx.meta.authorization_endpoint,
        &mut ctx.meta.token_endpoint,
        &mut ctx.meta.revocation_endpoint,
        &mut ctx.meta.introspection_endpoint,
    ] {
        let Some(path) = endpoint.strip_prefix(issuer.as_str()) else {
            return Err(Failure::new(format!(
                "{endpoint} is not below the issuer {issuer}"
            )));
        };
        *endpoint = format!("{base}{path}");
    }
    Ok(ctx)
}

async fn two_instances(providers: &mut [ProviderProcess]) -> CheckResult {
    let a = ctx_at(providers, 0).await?;
    let b = ctx_at(providers, 1).await?;
    let base_a = providers[0].target().base_url.clone();
    let base_b = providers[1].target().base_url.clone();

    // A code from a dance on A, redeemed at B; the token works at A.
    let grant = flow::authorize(&a.fresh_browser()?, &PRINTSHOP, &ALICE, None).await?;
    let tokens = flow::expect_tokens(&flow::redeem(&b, &grant, PRINTSHOP.basic()).await?)
        .map_err(|f| Failure::new(format!("a code issued by A, redeemed at B: {f}")))?;
    flow::expect_active(&a, &tokens.access, true, "B's token introspected at A").await?;

    // 200 concurrent redemptions of one code, alternating A and B: one winner.
    let grant = flow::authorize(&b.fresh_browser()?, &PRINTSHOP, &ALICE, None).await?;
    let turn = AtomicUsize::new(0);
    let results = race(|| {
        let ctx = [&a, &b][turn.fetch_add(1, Ordering::Relaxed) % 2].clone();
        let grant = grant.clone();
        async move { flow::redeem(&ctx, &grant, PRINTSHOP.basic()).await }
    })
    .await?;
    let at = |base: &str| {
        results
            .iter()
            .filter(|r| {
                r.as_ref()
                    .is_ok_and(|ex| ex.url.starts_with(&format!("{base}/")))
            })
            .count()
    };
    let (at_a, at_b) = (at(&base_a), at(&base_b));
    let winner = one_winner(results, "redemptions of one code, across A and B")?;
    ensure(at_a == RACERS / 2 && at_b == RACERS / 2, || {
        format!("the racers must be answered half by A, half by B: {at_a} by A, {at_b} by B")
    })?;
    eprintln!(
        "{RACERS} racers on one code across A and B on PostgreSQL: one winner, at {}",
        winner.url
    );
    // The replays revoked what the code produced (RFC 6749 §4.1.2), on both.
    let winner = flow::expect_tokens(&winner)?;
    for (ctx, name) in [(&a, "A"), (&b, "B")] {
        flow::expect_active(
            ctx,
            &winner.access,
            false,
            &format!("the race winner's access token at {name} after the code was replayed"),
        )
        .await?;
    }
    for (i, p) in providers.iter_mut().enumerate() {
        p.check_running()
            .map_err(|f| Failure::new(format!("instance {i}: {f}")))?;
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_instances_share_one_database() {
    let db = match fresh_database().await {
        Ok(Some(db)) => db,
        Ok(None) => return,
        Err(f) => panic!("{f}"),
    };
    let bin = locate_binary("photo-provider").unwrap_or_else(|f| panic!("{f}"));
    let args = ["--store", db.as_str()];
    // A first: it creates the schema and seeds the empty store.
    let a = ProviderProcess::spawn(&bin, &args)
        .await
        .unwrap_or_else(|f| panic!("A: {f}"));
    let issuer = a.target().base_url.clone();
    let b = ProviderProcess::spawn_with_issuer(&bin, Some(&issuer), &args)
        .await
        .unwrap_or_else(|f| panic!("B: {f}"));
    let mut providers = vec![a, b];
    let outcome =
        tokio::time::timeout(Duration::from_secs(240), two_instances(&mut providers)).await;
    let failure = match outcome {
        Ok(Ok(())) => return,
        Ok(Err(f)) => f,
        Err(_) => Failure::new("the test did not finish within 240 s"),
    };
    let mut report = format!("two_instances_share_one_database failed:\n{failure}");
    for (name, p) in ["A", "B"].iter().zip(&providers) {
        report.push_str(&format!(
            "\n--- provider {name} log (tail) ---\n{}",
            p.log_tail()
        ));
    }
    panic!("{report}");
}
