//! Sets `cfg(tessera_rocket_provider)` once `examples/photo-provider-rocket`
//! is more than its placeholder `fn main() {}`, so `tests/rocket.rs` runs the
//! suite against it from then on (and reports its tests as ignored, with the
//! reason, until then).

use std::path::Path;

fn main() {
    println!("cargo::rustc-check-cfg=cfg(tessera_rocket_provider)");
    // Read at run time, not with `env!`: a build script compiled for one
    // checkout of the workspace can be reused (same target directory) for
    // another, and must look at the checkout it is run for.
    let manifest_dir = std::env::var_os("CARGO_MANIFEST_DIR").unwrap_or_default();
    let main_rs = Path::new(&manifest_dir)
        .join("..")
        .join("examples")
        .join("photo-provider-rocket")
        .join("src")
        .join("main.rs");
    println!("cargo::rerun-if-changed={}", main_rs.display());
    let source = std::fs::read_to_string(&main_rs).unwrap_or_default();
    if !is_placeholder(&source) {
        println!("cargo::rustc-cfg=tessera_rocket_provider");
    }
}

/// A missing file, or one whose code (comments, attributes and whitespace dropped) is
/// just `fn main() {}`, is a placeholder.
fn is_placeholder(source: &str) -> bool {
    let code: String = source
        .lines()
        .filter(|l| !l.trim_start().starts_with('#'))
        .map(|l| l.split("//").next().unwrap_or_default())
        .collect::<String>()
        .chars()
        .filter(|c| !c.is_whitespace())
        .collect();
    code.is_empty() || code == "fnmain(){}"
}
