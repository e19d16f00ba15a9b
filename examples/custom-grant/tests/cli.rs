//! The example binary's command line: it takes no flags, and says so in one
//! line with exit code 2 when given one.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::Command;

#[test]
fn a_flag_is_one_line_and_exit_2_help_is_0() {
    let bin = env!("CARGO_BIN_EXE_custom-grant");
    let out = Command::new(bin).arg("--bogus").output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.contains("--bogus"), "{stderr}");
    let help = Command::new(bin).arg("--help").output().unwrap();
    assert_eq!(help.status.code(), Some(0));
    let run = Command::new(bin).output().unwrap();
    assert_eq!(run.status.code(), Some(0));
    assert!(
        String::from_utf8(run.stdout)
            .unwrap()
            .contains("kiosk grant: HTTP 200")
    );
}
