//! photo-cli's flag errors: one line on stderr with clap's details, exit
//! status 2, nothing attempted.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::Command;

fn photo_cli(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_photo-cli"))
        .args(args)
        .output()
        .expect("run photo-cli")
}

#[test]
fn flag_errors_are_one_line_with_their_details() {
    for (args, detail) in [
        (&["--bogus"][..], "--bogus"),
        (&["--provider"], "--provider"),
        (&["--provider", "::nonsense"], "::nonsense"),
        // Clap's details after its first line: the values a flag takes.
        (&["--access-tokens", "xml"], "opaque, jwt"),
    ] {
        let out = photo_cli(args);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(stderr.trim_end().lines().count(), 1, "{stderr:?}");
        assert!(stderr.starts_with("photo-cli: "), "{stderr}");
        assert!(stderr.contains(detail), "{args:?}: {stderr}");
    }
}
