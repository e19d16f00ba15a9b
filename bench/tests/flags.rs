//! tessera-bench's flag errors: one line on stderr with clap's details
//! (the values a flag takes), exit status 2, nothing run.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

/// tessera-bench run with `args`, which it must refuse at once: a flag it
/// took would start a benchmark of minutes, so after 10 s it is killed
/// and the test fails.
fn refused(args: &[&str]) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_tessera-bench"))
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run tessera-bench");
    let deadline = Instant::now() + Duration::from_secs(10);
    while child.try_wait().expect("wait").is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{args:?} was taken: a benchmark started");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    child.wait_with_output().expect("output")
}

#[test]
fn flag_errors_are_one_line_with_their_details() {
    for (args, detail) in [
        (&["--bogus"][..], "--bogus"),
        (&["--duration", "abc"], "bad duration"),
        (&["--only", "nope"], "memory"),
        (&["--concurrency", "0"], "--concurrency"),
        (
            &["--router-only", "5", "--router-app", "nope"],
            "provider, bare, core",
        ),
        (&["--soak-only"], "--soak"),
    ] {
        let out = refused(args);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(stderr.trim_end().lines().count(), 1, "{stderr:?}");
        assert!(stderr.starts_with("tessera-bench: "), "{stderr}");
        assert!(stderr.contains(detail), "{args:?}: {stderr}");
    }
}
