//! A provider binary's command line: `--help`, bad flags, an unusable listen
//! address, an unreachable store, the start-up line. Shared by both providers'
//! test crates, which name the binary as `crate::BIN` and `crate::NAME`.

use std::io::{BufRead, BufReader};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

fn provider(args: &[&str]) -> Output {
    Command::new(crate::BIN)
        .args(args)
        .env_remove("RUST_LOG")
        .output()
        .expect("run the provider")
}

fn assert_one_line_error(out: &Output) {
    assert!(!out.status.success(), "{out:?}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(stderr.trim_end().lines().count(), 1, "stderr: {stderr:?}");
    assert!(
        stderr.starts_with(&format!("{}: ", crate::NAME)),
        "{stderr}"
    );
    assert!(!stderr.contains("panicked"), "{stderr}");
}

#[test]
fn help_documents_every_flag() {
    let out = provider(&["--help"]);
    assert!(out.status.success());
    let help = String::from_utf8(out.stdout).unwrap();
    for needle in [
        crate::NAME,
        "--listen",
        "--issuer",
        "--store",
        "127.0.0.1:9000",
        "memory",
        "redis://HOST:PORT[/DB]",
        "postgres://USER:PASS@HOST:PORT/DB",
    ] {
        assert!(help.contains(needle), "--help lacks {needle}:\n{help}");
    }
}

#[test]
fn bad_flags_are_one_line_errors() {
    for args in [
        &["--listen", "notanaddr"][..],
        &["--issuer", "ftp://photos.example"],
        &["--issuer", "http://x/?q=1"],
        &["--issuer", "not a url"],
        &["--store", "postgres://db"],
        &["--store", "mysql://u:p@db/photos"],
        &["--store", "redis://127.0.0.1:6379/notanumber"],
        &["--bogus"],
    ] {
        let out = provider(args);
        assert_one_line_error(&out);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
    }
    let out = provider(&["--listen", "notanaddr"]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("notanaddr"));
    // The one line keeps clap's details: which flag is missing, which
    // values a flag takes.
    let out = provider(&["--dangerous-client-metadata-documents-over-loopback-http"]);
    assert_one_line_error(&out);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("--client-metadata-documents"), "{stderr}");
    let out = provider(&["--access-tokens", "JWT"]);
    assert_one_line_error(&out);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("opaque, jwt"), "{stderr}");
    // What was typed is echoed, but no password in a URL and no control
    // character that would break the line or drive a terminal.
    let out = provider(&["--store", "redis://:hunter2@127.0.0.1:6379/notanumber"]);
    assert_one_line_error(&out);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("hunter2"), "{stderr}");
    assert!(stderr.contains(":****@"), "{stderr}");
    let out = provider(&["--listen", "bad\raddr\u{1b}[2J"]);
    assert_one_line_error(&out);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains(['\r', '\u{1b}']), "{stderr:?}");
}

/// Ctrl-C or SIGTERM stops the provider even while a client holds a
/// half-sent request (which no timeout sees until its next bytes come):
/// open connections get a few seconds, then are closed.
#[test]
fn a_half_sent_request_does_not_keep_it_from_stopping() {
    use std::io::{Read, Write};
    /// The provider, killed if the test ends early.
    struct Running(std::process::Child);
    impl Drop for Running {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    for signal in ["-TERM", "-INT"] {
        let mut child = Running(
            Command::new(crate::BIN)
                .args(["--listen", "127.0.0.1:0"])
                .env("RUST_LOG", "off")
                .stdout(Stdio::piped())
                .stderr(Stdio::null())
                .spawn()
                .unwrap(),
        );
        let stdout = child.0.stdout.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut line = String::new();
            let _ = BufReader::new(stdout).read_line(&mut line);
            let _ = tx.send(line);
        });
        let line = rx
            .recv_timeout(Duration::from_secs(30))
            .expect("a start-up line");
        let addr = line
            .split("listening on ")
            .nth(1)
            .and_then(|rest| rest.split(',').next())
            .unwrap_or_else(|| panic!("no address in {line:?}"))
            .to_owned();
        // Half of a first request on one connection; then a whole request
        // answered on a second, so the first was surely accepted (in order).
        let mut held = std::net::TcpStream::connect(&addr).unwrap();
        held.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n").unwrap();
        let mut probe = std::net::TcpStream::connect(&addr).unwrap();
        probe
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        probe
            .write_all(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            .unwrap();
        let mut answer = [0; 64];
        let n = probe.read(&mut answer).unwrap();
        assert!(answer[..n].starts_with(b"HTTP/1.1 "), "{answer:?}");
        let signalled = std::time::Instant::now();
        let killed = Command::new("kill")
            .args([signal, &child.0.id().to_string()])
            .status()
            .unwrap();
        assert!(killed.success());
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        let status = loop {
            if let Some(status) = child.0.try_wait().unwrap() {
                break status;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "{signal}: still running after 20 s"
            );
            std::thread::sleep(Duration::from_millis(100));
        };
        assert!(status.success(), "{signal}: {status:?}");
        // It waited for the held connection a while (an idle server stops
        // at once), so the case above is the one tested.
        assert!(
            signalled.elapsed() >= Duration::from_millis(1500),
            "{signal}: stopped after {:?}",
            signalled.elapsed()
        );
        drop(held);
    }
}

#[test]
fn busy_port_is_a_one_line_error() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let out = provider(&["--listen", &addr]);
    assert_one_line_error(&out);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot listen"));
}

#[test]
fn unreachable_redis_is_a_one_line_error() {
    // A port nothing listens on: bind one, note it, free it.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let store = format!("redis://127.0.0.1:{port}/0");
    let out = provider(&["--listen", "127.0.0.1:0", "--store", &store]);
    assert_one_line_error(&out);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("Redis"), "{stderr}");
}

#[test]
fn unreachable_postgres_is_a_one_line_error() {
    // A port nothing listens on: bind one, note it, free it.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let store = format!("postgres://photos:hunter2@127.0.0.1:{port}/photobook");
    let started = std::time::Instant::now();
    let out = provider(&["--listen", "127.0.0.1:0", "--store", &store]);
    assert_one_line_error(&out);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("PostgreSQL"), "{stderr}");
    assert!(stderr.contains("unreachable"), "{stderr}");
    assert!(!stderr.contains("hunter2"), "the password leaked: {stderr}");
    // Bounded: photobook's 3 s connect timeout, plus start-up.
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "took {:?}",
        started.elapsed()
    );
}

#[test]
fn start_up_prints_the_issuer() {
    let mut child = Command::new(crate::BIN)
        .args([
            "--listen",
            "127.0.0.1:0",
            "--issuer",
            "http://photos.test:1234/",
        ])
        .env("RUST_LOG", "off")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut line = String::new();
        let _ = BufReader::new(stdout).read_line(&mut line);
        let _ = tx.send(line);
    });
    let line = rx.recv_timeout(Duration::from_secs(30));
    let _ = child.kill();
    let _ = child.wait();
    let line = line.expect("a start-up line");
    assert!(
        line.contains("issuer http://photos.test:1234\n"),
        "{line:?}"
    );
    assert!(line.contains("127.0.0.1:"), "{line:?}");
}
