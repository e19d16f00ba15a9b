//! The conformance suite against `photo-provider-rocket` (rocket adapter) issuing JWT access
//! tokens (`--access-tokens jwt`, RFC 9068): every check of the suite
//! holds in this mode too, plus the JWT's own checks (tests/jwt).

mod jwt;

const STORE: &str = "memory --access-tokens jwt";

tessera_conformance::suite!(
    "photo-provider-rocket",
    store = Some(crate::STORE.to_owned())
);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jwt_access_tokens_rfc9068() {
    let provider = match tessera_conformance::Provider::start("photo-provider-rocket", STORE).await
    {
        Ok(p) => p,
        Err(e) => panic!("cannot start photo-provider-rocket: {e}"),
    };
    provider
        .run("jwt::jwt_access_tokens_rfc9068", |t| async move {
            jwt::jwt_access_tokens_rfc9068(&t).await
        })
        .await;
}
