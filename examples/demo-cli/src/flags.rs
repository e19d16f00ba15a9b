//! Flag errors as one line.

use std::process::ExitCode;

use clap::error::ErrorKind;

/// What a program does with a flag error from clap's `try_parse`:
/// `--help` and `--version` print as usual and succeed; anything else is
/// one line on stderr, `PROGRAM: message (see --help)`, and exit status 2.
pub fn exit(program: &str, error: &clap::Error) -> ExitCode {
    match error.kind() {
        ErrorKind::DisplayHelp
        | ErrorKind::DisplayVersion
        | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => {
            let _ = error.print();
            ExitCode::SUCCESS
        }
        _ => {
            eprintln!("{program}: {} (see --help)", one_line(error));
            ExitCode::from(2)
        }
    }
}

/// A flag error as one line: clap's message with its details (the
/// required flags that are missing, the values a flag takes, a suggested
/// spelling) joined on, without the usage and "try --help" lines. What was
/// typed is echoed, so control characters are shown as `?` (none may
/// break the line or drive the terminal) and a password in a URL as
/// `****` (a store URL clap refused).
pub fn one_line(error: &clap::Error) -> String {
    let rendered = error.render().to_string();
    let mut line = String::new();
    for part in rendered
        .lines()
        .map(str::trim)
        .take_while(|l| !l.starts_with("Usage:"))
        .filter(|l| !l.is_empty() && !l.starts_with("For more information"))
    {
        if !line.is_empty() {
            line.push_str(if line.ends_with(':') { " " } else { "; " });
        }
        line.push_str(part.strip_prefix("error: ").unwrap_or(part));
    }
    if line.is_empty() {
        line.push_str("invalid arguments");
    }
    let line: String = line
        .chars()
        .map(|c| {
            if c.is_control() || matches!(c, '\u{2028}' | '\u{2029}') {
                '?'
            } else {
                c
            }
        })
        .collect();
    mask_passwords(&line)
}

/// `text` with the password of each `scheme://user:password@...` in it
/// replaced by `****`.
fn mask_passwords(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(i) = rest.find("://") {
        let (head, tail) = rest.split_at(i + 3);
        out.push_str(head);
        // The URL runs to a space or a quote; its user information, to its
        // last `@` (a password may hold a raw `/`).
        let end = tail
            .find(|c: char| c.is_whitespace() || c == '\'' || c == '"')
            .unwrap_or(tail.len());
        let url = &tail[..end];
        match url
            .rfind('@')
            .and_then(|at| url[..at].find(':').map(|colon| (colon, at)))
        {
            Some((colon, at)) => {
                out.push_str(&url[..colon]);
                out.push_str(":****");
                out.push_str(&url[at..]);
            }
            None => out.push_str(url),
        }
        rest = &tail[end..];
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::{Arg, Command};

    fn error(args: &[&str]) -> clap::Error {
        Command::new("demo")
            .arg(Arg::new("store").long("store").value_parser(|s: &str| {
                if s.starts_with("redis://") {
                    Ok(s.to_owned())
                } else {
                    Err("expected redis://HOST")
                }
            }))
            .arg(
                Arg::new("mode")
                    .long("mode")
                    .value_parser(["opaque", "jwt"]),
            )
            .arg(Arg::new("needed").long("needed").required(true))
            .try_get_matches_from(args)
            .err()
            .unwrap_or_else(|| panic!("{args:?} parsed"))
    }

    #[test]
    fn the_details_stay_on_the_one_line() {
        let missing = one_line(&error(&["demo"]));
        assert!(missing.contains("--needed"), "{missing}");
        let invalid = one_line(&error(&["demo", "--needed", "x", "--mode", "JWT"]));
        assert!(invalid.contains("opaque, jwt"), "{invalid}");
        for line in [missing, invalid] {
            assert!(!line.contains('\n') && !line.contains("Usage"), "{line}");
            assert!(!line.starts_with("error:"), "{line}");
        }
    }

    #[test]
    fn control_characters_and_passwords_are_not_echoed() {
        let line = one_line(&error(&[
            "demo",
            "--needed",
            "x",
            "--mode",
            "a\rb\u{1b}[2J\u{2028}",
        ]));
        assert!(!line.contains(['\r', '\u{1b}', '\u{2028}']), "{line:?}");
        let line = one_line(&error(&[
            "demo",
            "--needed",
            "x",
            "--store",
            "postgres://u:hun/ter2@h/db",
        ]));
        assert!(
            !line.contains("hun") && line.contains("postgres://u:****@h/db"),
            "{line}"
        );
    }

    #[test]
    fn passwords_are_masked_wherever_a_url_is() {
        assert_eq!(
            mask_passwords("a redis://:pw@h:1/0 and 'http://u:p@x/y' http://h/p"),
            "a redis://:****@h:1/0 and 'http://u:****@x/y' http://h/p"
        );
        assert_eq!(mask_passwords("no url"), "no url");
    }
}
