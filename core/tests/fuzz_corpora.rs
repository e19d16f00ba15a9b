//! The fuzz targets' corpora (`fuzz/corpus/<target>/`), replayed through
//! the very bodies the fuzzers run (`fuzz/targets.rs`), so every input a
//! fuzzer kept is checked by the ordinary test command, without cargo-fuzz
//! or a nightly toolchain.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "../../fuzz/targets.rs"]
#[allow(dead_code)]
mod targets;

use std::path::PathBuf;

fn corpus(target: &str) -> Vec<PathBuf> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../fuzz/corpus")
        .join(target);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|entry| entry.unwrap().path())
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    assert!(!files.is_empty(), "empty corpus {}", dir.display());
    files
}

fn replay(target: &str) {
    for file in corpus(target) {
        let data = std::fs::read(&file).unwrap();
        let result = std::panic::catch_unwind(|| targets::run(target, &data));
        assert!(
            result.is_ok(),
            "{target} fails on {} ({} bytes)",
            file.display(),
            data.len()
        );
    }
}

#[test]
fn every_target_has_a_corpus() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../fuzz/corpus");
    for entry in std::fs::read_dir(&dir).unwrap() {
        let name = entry.unwrap().file_name().into_string().unwrap();
        assert!(
            targets::TARGETS.contains(&name.as_str()),
            "corpus {name} of no target"
        );
    }
    for target in targets::TARGETS {
        assert!(!corpus(target).is_empty());
    }
}

#[test]
fn authorize() {
    replay("authorize");
}

#[test]
fn token() {
    replay("token");
}

#[test]
fn basic() {
    replay("basic");
}

#[test]
fn scope() {
    replay("scope");
}

#[test]
fn redirect_uri() {
    replay("redirect_uri");
}

#[test]
fn params() {
    replay("params");
}

#[test]
fn login_handle() {
    replay("login_handle");
}

#[test]
fn bearer() {
    replay("bearer");
}

#[test]
fn par() {
    replay("par");
}

#[test]
fn device() {
    replay("device");
}

#[test]
fn registration() {
    replay("registration");
}

#[test]
fn jwt() {
    replay("jwt");
}

// Findings of the fuzz targets, fixed in the core (commit 414a6c4).

/// `params`: `Params`' `PartialEq` was derived over its decoded buffer,
/// which keeps the text of dropped empty values, so two `Params` with the
/// same pairs compared unequal.
#[test]
fn params_with_the_same_pairs_are_equal() {
    let parsed = tessera::Params::parse("a&c=1").unwrap();
    let built = tessera::Params::from_pairs([("c", "1")]).unwrap();
    assert!(parsed.iter().eq(built.iter()));
    assert_eq!(parsed, built);
}

/// `redirect_uri`: a loopback URI registered without a port matched the
/// same URI with any 1 to 5 digits as its port, 65536..=99999 included,
/// which is no port (RFC 8252 §7.3 frees the port, not the syntax): the
/// authorization endpoint then redirected to a URI no browser can follow.
#[test]
fn loopback_ports_are_ports() {
    let registered = tessera::RedirectUri::new("http://127.0.0.1/cb").unwrap();
    assert!(registered.matches("http://127.0.0.1:65535/cb"));
    assert!(!registered.matches("http://127.0.0.1:99999/cb"));
}

#[test]
fn dpop() {
    replay("dpop");
}

#[test]
fn client_assertion() {
    replay("client_assertion");
}

/// The `client_assertion` harness does reach its acceptance checks: good
/// claims get a token, once.
#[test]
fn client_assertion_harness_accepts_good_claims_once() {
    let now = 20_000 * 86_400;
    let claims = format!(
        r#"{{"iss":"signer","sub":"signer","aud":"https://as.example","exp":{},"jti":"harness-check"}}"#,
        now + 60
    );
    let mut data = vec![1u8];
    data.extend_from_slice(claims.as_bytes());
    assert_eq!(targets::client_assertion(&data), 200);
    assert_eq!(
        targets::client_assertion(&data),
        401,
        "the jti again: invalid_client"
    );
}
