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
