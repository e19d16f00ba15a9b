//! The `photo-provider` binary: flags, logging to stderr (`RUST_LOG`), serve.

use std::process::ExitCode;

use photobook::Args;
use photobook::config::cli_exit;

const NAME: &str = "photo-provider";

fn main() -> ExitCode {
    let args = match Args::try_parse_named(NAME) {
        Ok(args) => args,
        Err(error) => return cli_exit(NAME, &error),
    };
    photobook::init_logging("photo_provider=info,photobook=info,tessera=info,tessera_axum=info");
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("{NAME}: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(photo_provider::run(args)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("{NAME}: {e}");
            ExitCode::FAILURE
        }
    }
}
