//! tessera-bench's flag errors: one line on stderr with clap's details
//! (the values a flag takes), exit status 2, nothing run.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::Command;

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
        let out = Command::new(env!("CARGO_BIN_EXE_tessera-bench"))
            .args(args)
            .output()
            .expect("run tessera-bench");
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(stderr.trim_end().lines().count(), 1, "{stderr:?}");
        assert!(stderr.starts_with("tessera-bench: "), "{stderr}");
        assert!(stderr.contains(detail), "{args:?}: {stderr}");
    }
}
