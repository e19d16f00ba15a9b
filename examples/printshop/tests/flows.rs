//! PrintShop's flows against a fake provider, driven by a cookie-keeping HTTP client.

#![allow(clippy::expect_used, clippy::unwrap_used)]

mod support;

use reqwest::StatusCode;
use support::{
    Behaviour, FakeProvider, Iss, browser, redis_url, start_printshop, start_printshop_on, visit,
};

/// Starts a fake provider with `behaviour` and a PrintShop pointed at it.
async fn setup(behaviour: Behaviour) -> (FakeProvider, String) {
    let fake = FakeProvider::start(behaviour).await;
    let shop = start_printshop(&fake.issuer).await;
    (fake, shop)
}

/// The photos page, at `/photos` or where the dance ends: `/callback`
/// shows it too (DEMO-CONTRACT).
fn assert_photos_page(page: &support::Page) {
    assert_eq!(page.status, StatusCode::OK, "body: {}", page.body);
    assert!(
        matches!(page.url.path(), "/photos" | "/callback"),
        "{}",
        page.url
    );
    assert!(
        page.body.contains(r#"<span id="owner">alice</span>"#),
        "{}",
        page.body
    );
    assert!(page.body.contains("Sunset over the bay"));
    assert!(
        page.body.contains("Grandma&#39;s &lt;garden&gt;"),
        "titles are escaped"
    );
    assert!(page.body.contains("First snow"));
    assert_eq!(page.body.matches(r#"<li class="photo""#).count(), 3);
    assert!(
        !page.body.contains("tsa_fake_access_"),
        "no access token in HTML"
    );
    assert!(
        !page.body.contains("tsr_fake_refresh_"),
        "no refresh token in HTML"
    );
}

#[tokio::test]
async fn happy_path_links_and_shows_photos() {
    let (fake, shop) = setup(Behaviour::default()).await;
    let client = browser();

    let home = visit(&client, &format!("{shop}/")).await;
    assert_eq!(home.status, StatusCode::OK);
    assert!(home.body.contains("Connect PhotoBook"));
    assert!(home.body.contains(r#"href="/connect""#));
    assert_eq!(
        home.headers
            .get("cache-control")
            .and_then(|v| v.to_str().ok()),
        Some("no-store")
    );

    let page = visit(&client, &format!("{shop}/connect")).await;
    assert_photos_page(&page);
    // DEMO-CONTRACT: the dance ends on `/callback`, which shows the photos.
    assert_eq!(page.url.path(), "/callback");

    {
        let state = fake.state();
        assert_eq!(state.authorize_requests.len(), 1);
        let request = &state.authorize_requests[0];
        let get = |k: &str| request.get(k).map(String::as_str);
        assert_eq!(get("response_type"), Some("code"));
        assert_eq!(get("client_id"), Some("printshop"));
        assert_eq!(
            get("redirect_uri"),
            Some(format!("{shop}/callback").as_str())
        );
        assert_eq!(get("scope"), Some("photos.read profile"));
        assert_eq!(get("code_challenge_method"), Some("S256"));
        assert_eq!(get("code_challenge").map(str::len), Some(43));
        assert!(get("state").is_some_and(|s| s.len() >= 22));
        assert_eq!(state.token_calls, 1);
        assert_eq!(state.api_calls, 1);
    }

    // Linked: the home page now offers the photos, and they load again.
    let home = visit(&client, &format!("{shop}/")).await;
    assert!(home.body.contains("View my photos"));
    // DEMO-CONTRACT: `GET /` shows a "Connect PhotoBook" link, linked or not.
    assert!(
        home.body
            .contains(r#"href="/connect">Connect PhotoBook</a>"#)
    );
    assert_photos_page(&visit(&client, &format!("{shop}/photos")).await);
}

#[tokio::test]
async fn connect_sets_a_safe_cookie_and_redirects_to_discovered_endpoint() {
    let (fake, shop) = setup(Behaviour::default()).await;
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let response = client.get(format!("{shop}/connect")).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    let location = response.headers()["location"].to_str().unwrap();
    assert!(
        location.starts_with(&format!("{}/oauth/authorize?", fake.issuer)),
        "{location}"
    );
    let cookie = response.headers()["set-cookie"].to_str().unwrap();
    assert!(cookie.starts_with("printshop_session="), "{cookie}");
    assert!(cookie.contains("HttpOnly"), "{cookie}");
    assert!(cookie.contains("SameSite=Lax"), "{cookie}");
    assert!(
        !cookie.contains("Secure"),
        "plain-http demo cookie: {cookie}"
    );
}

#[tokio::test]
async fn state_mismatch_is_refused() {
    let (fake, shop) = setup(Behaviour {
        wrong_state: true,
        ..Behaviour::default()
    })
    .await;
    let page = visit(&browser(), &format!("{shop}/connect")).await;
    assert_eq!(page.status, StatusCode::BAD_REQUEST);
    assert_eq!(page.url.path(), "/callback");
    assert!(
        page.body.contains("This sign-in does not match"),
        "{}",
        page.body
    );
    assert_eq!(fake.state().token_calls, 0, "code never exchanged");
}

/// A code the provider refuses as malformed came from the browser's query:
/// a 400 page, not a 5xx blaming the provider.
#[tokio::test]
async fn a_code_refused_as_malformed_is_the_requests_fault() {
    let (fake, shop) = setup(Behaviour {
        refuse_code_as_malformed: true,
        ..Behaviour::default()
    })
    .await;
    let page = visit(&browser(), &format!("{shop}/connect")).await;
    assert_eq!(page.status, StatusCode::BAD_REQUEST);
    assert!(
        page.body.contains("This sign-in answer cannot be used"),
        "{}",
        page.body
    );
    assert_eq!(fake.state().token_calls, 1);
}

#[tokio::test]
async fn callback_without_session_or_with_duplicates_is_refused() {
    let (fake, shop) = setup(Behaviour::default()).await;
    let page = visit(&browser(), &format!("{shop}/callback?code=x&state=y&iss=z")).await;
    assert_eq!(page.status, StatusCode::BAD_REQUEST);
    assert!(page.body.contains("This sign-in does not match"));
    let page = visit(&browser(), &format!("{shop}/callback?state=a&state=b")).await;
    assert_eq!(page.status, StatusCode::BAD_REQUEST);
    assert!(page.body.contains("appeared twice"));
    assert_eq!(fake.state().token_calls, 0);
}

#[tokio::test]
async fn access_denied_shows_friendly_page() {
    let (fake, shop) = setup(Behaviour {
        deny: true,
        ..Behaviour::default()
    })
    .await;
    let client = browser();
    let page = visit(&client, &format!("{shop}/connect")).await;
    assert_eq!(page.status, StatusCode::FORBIDDEN);
    assert!(page.body.contains("You declined access"), "{}", page.body);
    assert!(
        page.body.contains(r#"href="/connect""#),
        "offers to try again"
    );
    assert_eq!(fake.state().token_calls, 0);
    // Nothing is linked.
    let home = visit(&client, &format!("{shop}/")).await;
    assert!(home.body.contains("Connect PhotoBook"));
}

#[tokio::test]
async fn wrong_iss_is_refused() {
    let (fake, shop) = setup(Behaviour {
        iss: Iss::Wrong,
        ..Behaviour::default()
    })
    .await;
    let page = visit(&browser(), &format!("{shop}/connect")).await;
    assert_eq!(page.status, StatusCode::BAD_REQUEST);
    assert!(
        page.body.contains("did not come from PhotoBook"),
        "{}",
        page.body
    );
    assert_eq!(fake.state().token_calls, 0);
}

#[tokio::test]
async fn missing_iss_is_refused_when_advertised_and_accepted_otherwise() {
    let (fake, shop) = setup(Behaviour {
        iss: Iss::Missing,
        ..Behaviour::default()
    })
    .await;
    let page = visit(&browser(), &format!("{shop}/connect")).await;
    assert_eq!(page.status, StatusCode::BAD_REQUEST);
    assert!(page.body.contains("did not come from PhotoBook"));
    assert_eq!(fake.state().token_calls, 0);

    let (_fake, shop) = setup(Behaviour {
        iss: Iss::Missing,
        advertise_iss: false,
        ..Behaviour::default()
    })
    .await;
    assert_photos_page(&visit(&browser(), &format!("{shop}/connect")).await);
}

#[tokio::test]
async fn metadata_with_foreign_issuer_is_refused() {
    let (fake, shop) = setup(Behaviour {
        metadata_issuer: Some("http://127.0.0.2:6666".into()),
        ..Behaviour::default()
    })
    .await;
    let page = visit(&browser(), &format!("{shop}/connect")).await;
    assert_eq!(page.status, StatusCode::BAD_GATEWAY);
    assert!(page.body.contains("misconfigured"));
    assert!(fake.state().authorize_requests.is_empty());
}

#[tokio::test]
async fn refresh_on_401_rotates_and_retries_once() {
    let (fake, shop) = setup(Behaviour::default()).await;
    let client = browser();
    assert_photos_page(&visit(&client, &format!("{shop}/connect")).await);

    fake.expire_access_tokens();
    assert_photos_page(&visit(&client, &format!("{shop}/photos")).await);
    {
        let state = fake.state();
        assert_eq!(state.refresh_grants, 1);
        // 1 initial call + (401 + retry)
        assert_eq!(state.api_calls, 3);
    }

    // Again: works only if PrintShop stored the rotated refresh token (the fake
    // revokes everything when a retired one is presented).
    fake.expire_access_tokens();
    assert_photos_page(&visit(&client, &format!("{shop}/photos")).await);
    assert_eq!(fake.state().refresh_grants, 2);
}

#[tokio::test]
async fn known_expired_token_is_refreshed_before_the_call() {
    let (fake, shop) = setup(Behaviour {
        expires_in: 1,
        ..Behaviour::default()
    })
    .await;
    assert_photos_page(&visit(&browser(), &format!("{shop}/connect")).await);
    let state = fake.state();
    assert_eq!(state.refresh_grants, 1);
    assert_eq!(state.api_calls, 1, "no wasted 401 round trip");
}

#[tokio::test]
async fn dead_refresh_token_asks_to_connect_again() {
    let (fake, shop) = setup(Behaviour::default()).await;
    let client = browser();
    assert_photos_page(&visit(&client, &format!("{shop}/connect")).await);
    fake.revoke_everything();
    let page = visit(&client, &format!("{shop}/photos")).await;
    assert_eq!(page.status, StatusCode::UNAUTHORIZED);
    assert!(page.body.contains("Please connect again"), "{}", page.body);
    let home = visit(&client, &format!("{shop}/")).await;
    assert!(home.body.contains("Connect PhotoBook"), "link forgotten");
}

#[tokio::test]
async fn disconnect_revokes_and_forgets() {
    let (fake, shop) = setup(Behaviour::default()).await;
    let client = browser();
    assert_photos_page(&visit(&client, &format!("{shop}/connect")).await);
    let response = client
        .post(format!("{shop}/disconnect"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.url().path(), "/");
    let body = response.text().await.unwrap();
    assert!(body.contains("Connect PhotoBook"));
    let state = fake.state();
    assert_eq!(state.revoked.len(), 1);
    assert!(state.revoked[0].starts_with("tsr_fake_refresh_"));
}

/// Connecting again while linked replaces the link, and the old link's
/// refresh token is revoked (RFC 7009) rather than left valid.
#[tokio::test]
async fn connecting_again_revokes_the_old_link() {
    let (fake, shop) = setup(Behaviour::default()).await;
    let client = browser();
    assert_photos_page(&visit(&client, &format!("{shop}/connect")).await);
    assert!(fake.state().revoked.is_empty());
    assert_photos_page(&visit(&client, &format!("{shop}/connect")).await);
    let state = fake.state();
    assert_eq!(state.revoked.len(), 1);
    assert!(state.revoked[0].starts_with("tsr_fake_refresh_"));
}

#[tokio::test]
async fn provider_down_then_up() {
    // Reserve a port, then free it so nothing listens there yet.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    let shop = start_printshop(&format!("http://{addr}")).await;
    let client = browser();

    let page = visit(&client, &format!("{shop}/connect")).await;
    assert_eq!(page.status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(
        page.body.contains("PhotoBook is not reachable"),
        "{}",
        page.body
    );

    // The provider comes up: the next request discovers it.
    let listener = tokio::net::TcpListener::bind(addr).await.unwrap();
    let _fake = FakeProvider::start_on(listener, Behaviour::default());
    assert_photos_page(&visit(&client, &format!("{shop}/connect")).await);
}

#[tokio::test]
async fn photos_without_link_goes_home_and_unknown_pages_are_friendly() {
    let (_fake, shop) = setup(Behaviour::default()).await;
    let page = visit(&browser(), &format!("{shop}/photos")).await;
    assert_eq!(page.url.path(), "/");
    assert!(page.body.contains("Connect PhotoBook"));
    let page = visit(&browser(), &format!("{shop}/nope")).await;
    assert_eq!(page.status, StatusCode::NOT_FOUND);
    assert!(page.body.contains("Page not found"));
}

/// Two PrintShops on one shared store (`--store url`), one browser: linked
/// through the first, then the link used and refreshed through the other
/// and again through the first (each rotated refresh token is stored where
/// the other finds it).
struct SharedDance {
    fake: FakeProvider,
    shop: String,
    other: String,
    client: reqwest::Client,
    /// The browser's session id.
    id: String,
}

async fn shared_dance(url: &str) -> SharedDance {
    let fake = FakeProvider::start(Behaviour::default()).await;
    let shop = start_printshop_on(&fake.issuer, url).await;
    let other = start_printshop_on(&fake.issuer, url).await;
    let jar = std::sync::Arc::new(reqwest::cookie::Jar::default());
    let client = support::browser_with(jar.clone());
    let page = visit(&client, &format!("{shop}/connect")).await;
    assert_photos_page(&page);
    assert_eq!(page.url.path(), "/callback");
    // The callback's state was taken: a reload does not link again.
    let again = visit(&client, page.url.as_str()).await;
    assert_eq!(again.status, StatusCode::BAD_REQUEST);
    // The same cookie (cookies ignore ports) finds the link through the
    // other server, and the rotated refresh token it stores is the one the
    // first then uses.
    fake.expire_access_tokens();
    assert_photos_page(&visit(&client, &format!("{other}/photos")).await);
    fake.expire_access_tokens();
    assert_photos_page(&visit(&client, &format!("{shop}/photos")).await);
    assert_eq!(fake.state().refresh_grants, 2);
    let id = support::cookie(&jar, &shop, printshop::session::COOKIE_NAME);
    SharedDance {
        fake,
        shop,
        other,
        client,
        id,
    }
}

impl SharedDance {
    /// Connecting again through the other server replaces the link in one
    /// step, and the old one is revoked.
    async fn connect_again(&self) {
        assert_photos_page(&visit(&self.client, &format!("{}/connect", self.other)).await);
        assert_eq!(self.fake.state().revoked.len(), 1);
    }

    /// Disconnecting through the other server revokes the link.
    async fn disconnect(&self) {
        let response = self
            .client
            .post(format!("{}/disconnect", self.other))
            .send()
            .await
            .unwrap();
        assert!(response.text().await.unwrap().contains("Connect PhotoBook"));
        assert_eq!(self.fake.state().revoked.len(), 2);
        let home = visit(&self.client, &format!("{}/", self.shop)).await;
        assert!(home.body.contains("Connect PhotoBook"));
    }
}

/// The whole dance with `--store redis://…`: two PrintShop processes' worth of
/// servers on one Redis share the browser's session, a rotated refresh token
/// is stored there, and disconnecting removes the tokens from Redis.
#[tokio::test]
async fn redis_store_runs_the_dance_and_shares_sessions() {
    let Some(url) = redis_url() else { return };
    let dance = shared_dance(&url).await;
    let mut redis = redis::Client::open(url.as_str())
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap();
    let key = format!("{}{}", printshop::session::REDIS_PREFIX, dance.id);
    let ttl: i64 = redis::cmd("PTTL")
        .arg(&key)
        .query_async(&mut redis)
        .await
        .unwrap();
    assert!(ttl > 0 && ttl <= 3_600_000, "TTL {ttl}");
    let mut link = redis::cmd("HGET");
    link.arg(&key).arg("link");
    let stored: Option<String> = link.query_async(&mut redis).await.unwrap();
    assert!(stored.is_some_and(|l| l.contains("tsr_fake_refresh_")));
    dance.connect_again().await;
    dance.disconnect().await;
    let stored: Option<String> = link.query_async(&mut redis).await.unwrap();
    assert_eq!(stored, None, "tokens gone from Redis");
}

/// The base URL of the test PostgreSQL server (`TESSERA_POSTGRES_URL`, as
/// `scripts/test.sh` sets it): `None` (skipped) with
/// `TESSERA_POSTGRES_SKIP=1`, else its absence fails the test.
fn postgres_url() -> Option<String> {
    match std::env::var("TESSERA_POSTGRES_URL") {
        Ok(v) if !v.trim().is_empty() => Some(v.trim().to_owned()),
        _ if std::env::var("TESSERA_POSTGRES_SKIP").is_ok_and(|v| v == "1") => {
            eprintln!("skipped: TESSERA_POSTGRES_URL is not set and TESSERA_POSTGRES_SKIP=1");
            None
        }
        _ => panic!(
            "TESSERA_POSTGRES_URL is not set: this test runs PrintShop on PostgreSQL. Start one \
             with `eval \"$(storage-postgres/scripts/postgres-up.sh)\"`, or set \
             TESSERA_POSTGRES_SKIP=1 to skip."
        ),
    }
}

/// DEMO-CONTRACT: PrintShop takes `--store postgres://...` too: two
/// PrintShops on one database share the sessions (a link made through one
/// is used and refreshed through the other), a pending sign-in is taken
/// once, and Disconnect removes the tokens from the database.
#[tokio::test]
async fn postgres_store_runs_the_dance_and_shares_sessions() {
    use sqlx::migrate::MigrateDatabase;
    let Some(base) = postgres_url() else { return };
    let mut url = url::Url::parse(&base).unwrap();
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    url.set_path(&format!("/printshop_{nanos:x}"));
    let url = url.to_string();
    sqlx::Postgres::create_database(&url).await.unwrap();

    let dance = shared_dance(&url).await;
    let db = sqlx::PgPool::connect(&url).await.unwrap();
    let link = || {
        sqlx::query_scalar::<_, Option<String>>(
            "SELECT link::text FROM printshop.sessions WHERE id = $1",
        )
        .bind(&dance.id)
        .fetch_one(&db)
    };
    assert!(
        link()
            .await
            .unwrap()
            .is_some_and(|l| l.contains("tsr_fake_refresh_"))
    );
    let pending: i64 = sqlx::query_scalar("SELECT count(*) FROM printshop.pending")
        .fetch_one(&db)
        .await
        .unwrap();
    assert_eq!(pending, 0, "the pending sign-in was taken");
    dance.connect_again().await;
    dance.disconnect().await;
    assert_eq!(link().await.unwrap(), None, "tokens gone from PostgreSQL");

    // Live sessions are bounded as in memory: at the cap a new visitor is
    // turned away (503), and the existing session still works.
    sqlx::query(
        "INSERT INTO printshop.sessions (id, ends_at)
         SELECT 'filler' || n, now() + interval '1 hour' FROM generate_series(1, $1) AS n",
    )
    .bind(i64::try_from(printshop::session::MAX_SESSIONS).unwrap())
    .execute(&db)
    .await
    .unwrap();
    let stranger = visit(&browser(), &format!("{}/connect", dance.shop)).await;
    assert_eq!(stranger.status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(
        stranger.body.contains("PrintShop is busy"),
        "{}",
        stranger.body
    );
    let home = visit(&dance.client, &format!("{}/", dance.other)).await;
    assert_eq!(home.status, StatusCode::OK);
    db.close().await;
    let _ = sqlx::Postgres::drop_database(&url).await;
}
