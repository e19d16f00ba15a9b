//! DPoP proof checks (RFC 9449 §4.3): one valid proof, then for each check a
//! proof that fails exactly that check, asserting the reason.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod dpop_client;

use dpop_client::{DpopKey, b64, now_secs};
use serde_json::json;
use tessera::{DpopError, DpopPolicy, ProofContext, Reason, check_dpop_proof, verify_dpop_proof};
use tessera_memory::MemoryStore;
use time::{Duration, OffsetDateTime};

const HTU: &str = "https://as.example/token";

fn ctx(now: OffsetDateTime) -> ProofContext<'static> {
    ProofContext::new("POST", HTU, now)
}

fn reason(r: Result<tessera::DpopProof, DpopError>) -> Reason {
    match r {
        Ok(p) => panic!("accepted: {p:?}"),
        Err(e) => e.reason(),
    }
}

fn now() -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp(now_secs()).unwrap()
}

#[test]
fn a_valid_proof_is_accepted_with_both_algorithms() {
    let now = now();
    for key in [DpopKey::es256(), DpopKey::ed25519()] {
        let proof = key.proof("POST", HTU, None);
        let checked = verify_dpop_proof(Some(&proof), &ctx(now), &DpopPolicy::new()).unwrap();
        // §6.1: the binding is the RFC 7638 thumbprint of the proof's key.
        assert_eq!(checked.jkt, key.thumbprint());
    }
}

#[test]
fn an_ed25519_proof_may_name_its_alg_as_rfc_9864_does() {
    // RFC 9864 (fully specified algorithms): `Ed25519` is the fully-specified name of EdDSA with
    // Ed25519 (oauth4webapi signs with it); `EdDSA` stays accepted.
    let key = DpopKey::ed25519();
    for alg in ["Ed25519", "EdDSA"] {
        let mut header = key.header();
        header["alg"] = json!(alg);
        let proof = key.sign(&header, &key.claims("POST", HTU, None));
        let checked = verify_dpop_proof(Some(&proof), &ctx(now()), &DpopPolicy::new()).unwrap();
        assert_eq!(checked.jkt, key.thumbprint(), "alg {alg}");
    }
    // Either name with a P-256 key is refused: `alg` must name the key's own.
    let ec = DpopKey::es256();
    let mut header = ec.header();
    header["alg"] = json!("Ed25519");
    let p = ec.sign(&header, &ec.claims("POST", HTU, None));
    assert_eq!(
        reason(verify_dpop_proof(Some(&p), &ctx(now()), &DpopPolicy::new())),
        Reason::DpopAlgNotAllowed
    );
}

#[test]
fn item_1_exactly_one_proof() {
    let key = DpopKey::es256();
    let p = key.proof("POST", HTU, None);
    let policy = DpopPolicy::new();
    assert_eq!(
        reason(verify_dpop_proof(None, &ctx(now()), &policy)),
        Reason::DpopProofMissing
    );
    let two = format!("{p}, {p}");
    assert_eq!(
        reason(verify_dpop_proof(Some(&two), &ctx(now()), &policy)),
        Reason::DpopProofRepeated
    );
}

#[test]
fn item_2_a_well_formed_jws_of_bounded_size() {
    let policy = DpopPolicy::new();
    let key = DpopKey::es256();
    let good = key.proof("POST", HTU, None);
    let mut parts: Vec<&str> = good.split('.').collect();
    for bad in [
        "".to_owned(),
        "abc".to_owned(),
        format!("{}.{}", parts[0], parts[1]),
        format!("{good}.x"),
        format!("{}.!!!.{}", parts[0], parts[2]),
        format!("{}.{}.{}", b64(b"[1,2]"), parts[1], parts[2]),
        format!("{}.{}.{}", parts[0], b64(b"not json"), parts[2]),
    ] {
        assert_eq!(
            reason(verify_dpop_proof(Some(&bad), &ctx(now()), &policy)),
            Reason::DpopProofMalformed,
            "{bad}"
        );
    }
    let huge = "a".repeat(tessera::MAX_DPOP_PROOF_BYTES + 1);
    assert_eq!(
        reason(verify_dpop_proof(Some(&huge), &ctx(now()), &policy)),
        Reason::DpopProofTooLarge
    );
    // A `crit` header we do not understand.
    let mut header = key.header();
    header["crit"] = json!(["exp"]);
    let p = key.sign(&header, &key.claims("POST", HTU, None));
    parts = p.split('.').collect();
    assert_eq!(parts.len(), 3);
    assert_eq!(
        reason(verify_dpop_proof(Some(&p), &ctx(now()), &policy)),
        Reason::DpopProofMalformed
    );
}

#[test]
fn item_3_required_claims() {
    let key = DpopKey::es256();
    let policy = DpopPolicy::new();
    for missing in ["htm", "htu", "iat"] {
        let mut claims = key.claims("POST", HTU, None);
        claims.as_object_mut().unwrap().remove(missing);
        let p = key.sign(&key.header(), &claims);
        assert_eq!(
            reason(verify_dpop_proof(Some(&p), &ctx(now()), &policy)),
            Reason::DpopProofMalformed,
            "without {missing}"
        );
    }
    for jti in [json!(null), json!(""), json!(42), json!("x".repeat(257))] {
        let mut claims = key.claims("POST", HTU, None);
        claims["jti"] = jti.clone();
        let p = key.sign(&key.header(), &claims);
        assert_eq!(
            reason(verify_dpop_proof(Some(&p), &ctx(now()), &policy)),
            Reason::DpopJtiInvalid,
            "jti {jti}"
        );
    }
}

#[test]
fn item_4_typ_is_dpop_jwt() {
    let key = DpopKey::es256();
    for typ in [json!("JWT"), json!("at+jwt"), json!(null), json!(1)] {
        let mut header = key.header();
        header["typ"] = typ.clone();
        let p = key.sign(&header, &key.claims("POST", HTU, None));
        assert_eq!(
            reason(verify_dpop_proof(Some(&p), &ctx(now()), &DpopPolicy::new())),
            Reason::DpopTypInvalid,
            "typ {typ}"
        );
    }
}

#[test]
fn item_5_alg_is_an_allowed_asymmetric_algorithm() {
    let key = DpopKey::es256();
    for alg in [
        "none", "HS256", "RS256", "ES384", "es256", "EdDSA", "Ed25519", "ed25519",
    ] {
        let mut header = key.header();
        header["alg"] = json!(alg);
        let p = key.sign(&header, &key.claims("POST", HTU, None));
        assert_eq!(
            reason(verify_dpop_proof(Some(&p), &ctx(now()), &DpopPolicy::new())),
            Reason::DpopAlgNotAllowed,
            "alg {alg} with an EC key"
        );
    }
    // `alg: none` with an empty signature.
    let mut header = key.header();
    header["alg"] = json!("none");
    let unsigned = format!(
        "{}.{}.",
        b64(header.to_string().as_bytes()),
        b64(key.claims("POST", HTU, None).to_string().as_bytes())
    );
    assert_eq!(
        reason(verify_dpop_proof(
            Some(&unsigned),
            &ctx(now()),
            &DpopPolicy::new()
        )),
        Reason::DpopAlgNotAllowed
    );
}

#[test]
fn item_6_the_signature_verifies_with_the_jwk() {
    let key = DpopKey::es256();
    let other = DpopKey::es256();
    // Signed by another key than the one in the header.
    let p = other.sign(&key.header(), &key.claims("POST", HTU, None));
    assert_eq!(
        reason(verify_dpop_proof(Some(&p), &ctx(now()), &DpopPolicy::new())),
        Reason::DpopSignatureInvalid
    );
    // A changed claim after signing.
    let good = key.proof("POST", HTU, None);
    let parts: Vec<&str> = good.split('.').collect();
    let mut claims = key.claims("POST", HTU, None);
    claims["jti"] = json!("changed");
    let forged = format!(
        "{}.{}.{}",
        parts[0],
        b64(claims.to_string().as_bytes()),
        parts[2]
    );
    assert_eq!(
        reason(verify_dpop_proof(
            Some(&forged),
            &ctx(now()),
            &DpopPolicy::new()
        )),
        Reason::DpopSignatureInvalid
    );
    // An Ed25519 key, too.
    let ed = DpopKey::ed25519();
    let p = DpopKey::ed25519().sign(&ed.header(), &ed.claims("POST", HTU, None));
    assert_eq!(
        reason(verify_dpop_proof(Some(&p), &ctx(now()), &DpopPolicy::new())),
        Reason::DpopSignatureInvalid
    );
}

#[test]
fn item_7_the_jwk_is_a_public_key() {
    let key = DpopKey::es256();
    let mut with_private = key.header();
    with_private["jwk"]["d"] = json!(b64(&[1u8; 32]));
    let mut symmetric = key.header();
    symmetric["jwk"] = json!({"kty": "oct", "k": b64(b"secret")});
    let mut no_jwk = key.header();
    no_jwk.as_object_mut().unwrap().remove("jwk");
    let mut rsa = key.header();
    rsa["jwk"] = json!({"kty": "RSA", "n": "AQAB", "e": "AQAB"});
    let mut not_on_curve = key.header();
    not_on_curve["jwk"]["y"] = json!(b64(&[7u8; 32]));
    for (what, header) in [
        ("a private member", with_private),
        ("a symmetric key", symmetric),
        ("no jwk", no_jwk),
        ("an RSA key", rsa),
        ("a point off the curve", not_on_curve),
    ] {
        let p = key.sign(&header, &key.claims("POST", HTU, None));
        assert_eq!(
            reason(verify_dpop_proof(Some(&p), &ctx(now()), &DpopPolicy::new())),
            Reason::DpopJwkInvalid,
            "{what}"
        );
    }
}

#[test]
fn item_8_htm_is_the_method() {
    let key = DpopKey::es256();
    for htm in ["GET", "post", "PUT"] {
        let p = key.proof(htm, HTU, None);
        assert_eq!(
            reason(verify_dpop_proof(Some(&p), &ctx(now()), &DpopPolicy::new())),
            Reason::DpopMethodMismatch,
            "htm {htm}"
        );
    }
}

#[test]
fn item_9_htu_is_the_uri_without_query_and_fragment() {
    let key = DpopKey::es256();
    for htu in [
        "https://as.example/token/",
        "https://as.example/other",
        "http://as.example/token",
        "https://evil.example/token",
        "https://as.example:8443/token",
        "/token",
    ] {
        let p = key.proof("POST", htu, None);
        assert_eq!(
            reason(verify_dpop_proof(Some(&p), &ctx(now()), &DpopPolicy::new())),
            Reason::DpopUriMismatch,
            "htu {htu}"
        );
    }
    // Normalised (RFC 3986 §6.2.2, §6.2.3), and the query/fragment ignored.
    for htu in [
        "HTTPS://AS.example:443/token",
        "https://as.example/./token",
        "https://as.example/%74oken",
        "https://as.example/token?x=1#y",
    ] {
        let p = key.proof("POST", htu, None);
        verify_dpop_proof(Some(&p), &ctx(now()), &DpopPolicy::new())
            .unwrap_or_else(|e| panic!("htu {htu}: {e:?}"));
    }
}

#[test]
fn item_10_the_server_nonce_when_required() {
    let key = DpopKey::es256();
    let policy = DpopPolicy::new().with_nonces([9; 32], Duration::seconds(300));
    let now = now();
    let p = key.proof("POST", HTU, None);
    let e = verify_dpop_proof(Some(&p), &ctx(now), &policy).unwrap_err();
    assert_eq!(e.reason(), Reason::DpopNonceInvalid);
    // §8: use_dpop_nonce, with the nonce to use.
    assert_eq!(e.to_oauth_error().code, tessera::ErrorCode::UseDpopNonce);
    let nonce = e.nonce().unwrap().to_owned();
    let mut claims = key.claims("POST", HTU, None);
    claims["nonce"] = json!(nonce);
    let p = key.sign(&key.header(), &claims);
    verify_dpop_proof(Some(&p), &ctx(now), &policy).unwrap();
    // A stale or foreign nonce.
    claims["nonce"] = json!("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA");
    let p = key.sign(&key.header(), &claims);
    assert_eq!(
        reason(verify_dpop_proof(Some(&p), &ctx(now), &policy)),
        Reason::DpopNonceInvalid
    );
}

#[test]
fn item_11_iat_within_the_window() {
    let key = DpopKey::es256();
    let now = now();
    let policy = DpopPolicy::new();
    for (iat, ok) in [
        (now.unix_timestamp(), true),
        (now.unix_timestamp() - 60, true),
        (now.unix_timestamp() + 5, true),
        (now.unix_timestamp() - 61, false),
        (now.unix_timestamp() + 6, false),
        (0, false),
    ] {
        let mut claims = key.claims("POST", HTU, None);
        claims["iat"] = json!(iat);
        let p = key.sign(&key.header(), &claims);
        let r = verify_dpop_proof(Some(&p), &ctx(now), &policy);
        if ok {
            r.unwrap();
        } else {
            assert_eq!(reason(r), Reason::DpopIatOutOfWindow, "iat {iat}");
        }
    }
    // The window is configurable.
    let strict = DpopPolicy::new().with_max_age(Duration::seconds(10));
    let mut claims = key.claims("POST", HTU, None);
    claims["iat"] = json!(now.unix_timestamp() - 30);
    let p = key.sign(&key.header(), &claims);
    assert_eq!(
        reason(verify_dpop_proof(Some(&p), &ctx(now), &strict)),
        Reason::DpopIatOutOfWindow
    );
}

#[tokio::test]
async fn item_11_jti_is_used_once_through_the_replay_cache() {
    let store = MemoryStore::new();
    let key = DpopKey::es256();
    let now = now();
    let p = key.proof("POST", HTU, None);
    let policy = DpopPolicy::new();
    let replay = &store;
    check_dpop_proof(replay, Some(&p), &ctx(now), &policy)
        .await
        .unwrap();
    let e = check_dpop_proof(replay, Some(&p), &ctx(now), &policy)
        .await
        .unwrap_err();
    assert_eq!(e.reason(), Reason::DpopReplayed);
    assert_eq!(
        e.to_oauth_error().code,
        tessera::ErrorCode::InvalidDpopProof
    );
    assert_eq!(e.to_oauth_error().status(), 400);
}

#[test]
fn item_12_ath_is_the_access_tokens_hash() {
    let key = DpopKey::es256();
    let token = "tsa_some-access-token";
    let now = now();
    let rs =
        ProofContext::new("GET", "https://rs.example/api/photos", now).with_access_token(token);
    let good = key.proof("GET", "https://rs.example/api/photos", Some(token));
    verify_dpop_proof(Some(&good), &rs, &DpopPolicy::new()).unwrap();
    for ath in [None, Some("other-token")] {
        let p = key.proof("GET", "https://rs.example/api/photos", ath);
        assert_eq!(
            reason(verify_dpop_proof(Some(&p), &rs, &DpopPolicy::new())),
            Reason::DpopAthMismatch,
            "ath of {ath:?}"
        );
    }
}
