//! The `printshop` binary's command line: `--help`, bad flags, unusable listen address.

#![allow(clippy::expect_used, clippy::unwrap_used)]

use std::process::{Command, Output};

fn printshop(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_printshop"))
        .args(args)
        .env_remove("RUST_LOG")
        .output()
        .expect("run printshop")
}

#[test]
fn help_documents_every_flag() {
    let out = printshop(&["--help"]);
    assert!(out.status.success());
    let help = String::from_utf8(out.stdout).unwrap();
    for flag in [
        "--listen",
        "--provider",
        "--client-id",
        "--client-secret",
        "--public-url",
        "--store",
        "--access-tokens",
    ] {
        assert!(help.contains(flag), "--help lacks {flag}:\n{help}");
    }
    assert!(help.contains("127.0.0.1:9001"));
    assert!(help.contains("redis://HOST:PORT[/DB]"));
    assert!(
        !help.contains("stay in memory"),
        "--store redis is real:\n{help}"
    );
    assert!(help.contains("http://127.0.0.1:9000"));
    assert!(
        !help.contains("0123456789abcdef"),
        "the secret is not printed"
    );
}

fn assert_one_line_error(out: &Output) {
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(stderr.trim_end().lines().count(), 1, "stderr: {stderr:?}");
    assert!(!stderr.contains("panicked"), "{stderr}");
}

#[test]
fn unknown_flag_is_a_one_line_error() {
    let out = printshop(&["--bogus"]);
    assert_one_line_error(&out);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--bogus"));
}

#[test]
fn bad_values_are_one_line_errors() {
    assert_one_line_error(&printshop(&["--listen", "not-an-address"]));
    assert_one_line_error(&printshop(&["--provider", "::nonsense"]));
    assert_one_line_error(&printshop(&["--access-tokens", "xml"]));
    assert_one_line_error(&printshop(&["--client-secret", ""]));
    // The one line keeps clap's details: the values a flag takes.
    let out = printshop(&["--access-tokens", "xml"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("opaque, jwt"), "{stderr}");
    // No secret is echoed: a store URL's password, or a client secret that
    // starts with a dash (a value, not an unknown flag).
    let out = printshop(&["--store", "postgres://u:hunter2@/db"]);
    assert_one_line_error(&out);
    assert!(!String::from_utf8_lossy(&out.stderr).contains("hunter2"));
    let out = printshop(&["--client-secret", "--s3cret", "--listen", "bad"]);
    assert_one_line_error(&out);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("--listen") && !stderr.contains("s3cret"),
        "{stderr}"
    );
}

#[test]
fn busy_port_is_a_one_line_error() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let out = printshop(&["--listen", &addr]);
    assert_one_line_error(&out);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot listen"));
    // DEMO-CONTRACT's `--access-tokens`, taken by every demo program: parsed,
    // and the start goes on (to the busy port).
    let out = printshop(&["--access-tokens", "jwt", "--listen", &addr]);
    assert_eq!(out.status.code(), Some(1));
}

#[test]
fn unreachable_redis_store_is_a_one_line_error() {
    // Nothing listens on port 1; the store is checked before serving.
    let started = std::time::Instant::now();
    let out = printshop(&["--listen", "127.0.0.1:0", "--store", "redis://127.0.0.1:1"]);
    assert_one_line_error(&out);
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.starts_with("printshop: cannot use the Redis store redis://127.0.0.1:1"),
        "{stderr}"
    );
    assert!(
        started.elapsed() < std::time::Duration::from_secs(10),
        "bounded"
    );
}

#[test]
fn redis_password_is_not_printed() {
    let out = printshop(&[
        "--listen",
        "127.0.0.1:0",
        "--store",
        "redis://:hunter2@127.0.0.1:1/0",
    ]);
    assert_one_line_error(&out);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("cannot use the Redis store"), "{stderr}");
    assert!(!stderr.contains("hunter2"), "{stderr}");
}

#[test]
fn bad_store_is_a_one_line_error() {
    let out = printshop(&["--store", "mysql://127.0.0.1/x"]);
    assert_one_line_error(&out);
    assert_eq!(out.status.code(), Some(2));
    // A PostgreSQL store that does not answer: one line, exit 1, no password.
    let out = printshop(&[
        "--listen",
        "127.0.0.1:0",
        "--store",
        "postgres://shop:hunter2@127.0.0.1:1/shop",
    ]);
    assert_one_line_error(&out);
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("cannot use the PostgreSQL store"),
        "{stderr}"
    );
    assert!(!stderr.contains("hunter2"), "{stderr}");
    // Why, not only that a pool timed out.
    assert!(stderr.contains("refused"), "{stderr}");
}
