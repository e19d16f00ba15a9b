//! The conformance suite against `photo-provider` (axum) on a PostgreSQL
//! store: the same checks, the races included, with every grant step going
//! through PostgreSQL. The providers share one fresh database (created once
//! per test process on the server `TESSERA_POSTGRES_URL` names), as several
//! instances of one issuer would. Without `TESSERA_POSTGRES_URL` the tests
//! fail, unless `TESSERA_POSTGRES_SKIP=1`.

use std::sync::OnceLock;

tessera_conformance::suite!("photo-provider", store = crate::postgres_store());

/// The `--store` URL: a database made for this test process. `None` skips
/// (only with `TESSERA_POSTGRES_SKIP=1`).
fn postgres_store() -> Option<String> {
    static URL: OnceLock<Option<String>> = OnceLock::new();
    URL.get_or_init(|| {
        let base = match std::env::var("TESSERA_POSTGRES_URL") {
            Ok(v) if !v.trim().is_empty() => v.trim().to_owned(),
            _ if std::env::var("TESSERA_POSTGRES_SKIP").is_ok_and(|v| v == "1") => return None,
            _ => panic!(
                "TESSERA_POSTGRES_URL is not set: these tests run the provider on PostgreSQL. \
                 Start one with `eval \"$(storage-postgres/scripts/postgres-up.sh)\"`, or set \
                 TESSERA_POSTGRES_SKIP=1 to skip."
            ),
        };
        let name = format!(
            "conformance_{}_{:08x}",
            std::process::id(),
            rand::random::<u32>()
        );
        Some(create_database(&base, &name))
    })
    .clone()
}

/// Creates database `name` on the server of `base` and returns its URL.
/// Runs on a thread of its own (the caller is inside a runtime).
fn create_database(base: &str, name: &str) -> String {
    use sqlx::migrate::MigrateDatabase;
    let mut url = match url::Url::parse(base) {
        Ok(u) => u,
        Err(e) => panic!("TESSERA_POSTGRES_URL is not a URL: {e}"),
    };
    url.set_path(&format!("/{name}"));
    let target = url.to_string();
    let made = target.clone();
    let created = std::thread::spawn(move || {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| e.to_string())?
            .block_on(sqlx::Postgres::create_database(&made))
            .map_err(|e| e.to_string())
    })
    .join();
    match created {
        Ok(Ok(())) => target,
        Ok(Err(e)) => panic!("cannot create database {name}: {e}"),
        Err(_) => panic!("creating database {name} panicked"),
    }
}
