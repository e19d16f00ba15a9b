//! The `photo-provider-rocket` binary: flags, logging to stderr (`RUST_LOG`), serve.

use std::process::ExitCode;

use photobook::Args;
use photobook::config::cli_exit;

const NAME: &str = "photo-provider-rocket";

fn main() -> ExitCode {
    let args = match Args::try_parse_named(NAME) {
        Ok(args) => args,
        Err(error) => return cli_exit(NAME, &error),
    };
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| {
                tracing_subscriber::EnvFilter::new(
                    // Rocket logs a failed guard (a plain 401) as a warning under
                    // the route's module, `photo_provider_rocket::_`: not news.
                    "photo_provider_rocket=info,photo_provider_rocket::_=error,photobook=info,tessera=info,tessera_rocket=info",
                )
            }),
        )
        .with_writer(std::io::stderr)
        .init();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("{NAME}: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(photo_provider_rocket::run(args)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("{NAME}: {e}");
            ExitCode::FAILURE
        }
    }
}
