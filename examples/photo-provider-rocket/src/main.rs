//! The `photo-provider-rocket` binary: flags, logging to stderr (`RUST_LOG`), serve.

use std::process::ExitCode;

use photobook::Args;

const NAME: &str = "photo-provider-rocket";

fn main() -> ExitCode {
    let args = match Args::try_parse_named(NAME) {
        Ok(args) => args,
        Err(error) => return demo_cli::flags::exit(NAME, &error),
    };
    // Held until `main` returns, after the server has shut down: dropping
    // it writes the lines still buffered.
    let _log = photobook::init_logging(photobook::logging::ROCKET_PROVIDER_FILTER);
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
