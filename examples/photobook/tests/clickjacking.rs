//! The pages a person sees cannot be framed by another site (RFC 6819
//! §4.4.1.9, clickjacking of the consent page): `X-Frame-Options: DENY`
//! and a CSP with `frame-ancestors 'none'`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use photobook::{Demo, build_server};

#[tokio::test]
async fn login_and_error_pages_refuse_framing() {
    let demo =
        Demo::new(build_server("http://127.0.0.1:9000", photobook::store::memory()).unwrap())
            .unwrap();
    let login = demo
        .authorize(
            "response_type=code&client_id=printshop&redirect_uri=http%3A%2F%2F127.0.0.1%3A9001%2Fcallback\
             &state=s&code_challenge=E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM&code_challenge_method=S256",
            None,
        )
        .await;
    let error = demo.authorize("client_id=nobody", None).await;
    let device = demo.device_page("user_code=BCDF-GHJK", None);
    let device_error = demo.device_submit(b"user_code=BCDF-GHJK", None).await;
    let device_consent = demo.device_consent(b"decision=allow", None).await;
    for page in [login, error, device, device_error, device_consent] {
        assert_eq!(page.header("cache-control"), Some("no-store"));
        assert!(
            page.header("content-type")
                .unwrap()
                .starts_with("text/html")
        );
        assert_eq!(page.header("x-frame-options"), Some("DENY"));
        assert!(
            page.header("content-security-policy")
                .unwrap()
                .contains("frame-ancestors 'none'")
        );
    }
}
