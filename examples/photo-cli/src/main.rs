//! The `photo-cli` binary: parses flags, runs, reports one line on failure.

#![forbid(unsafe_code)]

use std::io::Write;
use std::process::ExitCode;

use clap::Parser;
use clap::error::ErrorKind;
use photo_cli::Args;

fn main() -> ExitCode {
    let args = match Args::try_parse() {
        Ok(args) => args,
        Err(error) => return flag_error(&error),
    };
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => return fail(&format!("cannot start the async runtime: {e}")),
    };
    match runtime.block_on(photo_cli::run(&args)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => fail(&e.to_string()),
    }
}

/// One line on stderr, exit status 1.
fn fail(message: &str) -> ExitCode {
    let line = message.split_whitespace().collect::<Vec<_>>().join(" ");
    let _ = writeln!(std::io::stderr(), "photo-cli: {}", photo_cli::clean(&line));
    ExitCode::FAILURE
}

/// `--help` and `--version` print as usual; any other flag error is one line
/// on stderr, exit status 2.
fn flag_error(error: &clap::Error) -> ExitCode {
    match error.kind() {
        ErrorKind::DisplayHelp
        | ErrorKind::DisplayVersion
        | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => {
            let _ = error.print();
            ExitCode::SUCCESS
        }
        _ => {
            let _ = writeln!(
                std::io::stderr(),
                "photo-cli: {} (see --help)",
                one_line(error)
            );
            ExitCode::from(2)
        }
    }
}

/// Clap's message as one line, with its details (missing flags, the values
/// a flag takes, a suggested spelling) but not the usage and "try --help";
/// control characters as `?`, passwords in URLs as `****` (a copy of
/// `photobook::config::one_line`: this client shares no crate with the
/// provider).
fn one_line(error: &clap::Error) -> String {
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
    // What was typed is echoed: no control character may break the line
    // or drive the terminal, and no password in a URL is shown.
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
/// replaced by `****` (a store URL clap refused is echoed in its error).
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
