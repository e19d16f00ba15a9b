//! Locating (and, if needed, building) the demo's binaries.
//!
//! A test cannot use `env!("CARGO_BIN_EXE_…")` for another package's binary,
//! so the harness runs `cargo build -p photo-provider -p printshop -p photo-cli` once per
//! test process, in the running test's profile, and uses the binaries it made.
//!
//! The build goes to its own target directory, `<target>/tessera-e2e/`: cargo
//! unifies dependency features over the packages of one build, so building
//! these two packages alone in the main target directory would rebuild a
//! different feature set of their dependencies and overwrite the binaries
//! that `cargo test --workspace` just made (and then the reverse on the next
//! workspace run). In its own directory the build is incremental and a no-op
//! when nothing changed.
//!
//! Set `TESSERA_E2E_BIN_DIR` to a directory holding prebuilt binaries to skip
//! the build.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use crate::process::log_tail;

/// The packages (and binaries) the end-to-end tests run.
pub const DEMO_BINARIES: [&str; 3] = ["photo-provider", "printshop", "photo-cli"];

/// How long the build may take (2 cores, possibly a cold cache).
/// Override with `TESSERA_E2E_BUILD_TIMEOUT_SECS`.
const DEFAULT_BUILD_TIMEOUT: Duration = Duration::from_secs(30 * 60);

/// Paths of the demo's binaries.
#[derive(Debug, Clone)]
pub struct Binaries {
    /// `photo-provider`.
    pub photo_provider: PathBuf,
    /// `printshop`.
    pub printshop: PathBuf,
    /// `photo-cli` (the device grant's terminal client).
    pub photo_cli: PathBuf,
}

/// The workspace root (the parent of this crate's folder).
pub fn workspace_root() -> PathBuf {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    manifest.parent().unwrap_or(manifest).to_path_buf()
}

/// The binaries, built once per test process.
pub fn demo_binaries() -> Result<Binaries, String> {
    static BUILT: OnceLock<Result<Binaries, String>> = OnceLock::new();
    BUILT.get_or_init(build_and_locate).clone()
}

/// `(target dir, profile dir name)` of the running test executable
/// (`<target>/<profile>/deps/<test>-<hash>`).
fn target_and_profile() -> Result<(PathBuf, String), String> {
    let exe = std::env::current_exe().map_err(|e| format!("cannot locate the test binary: {e}"))?;
    let profile_dir = exe
        .parent()
        .and_then(Path::parent)
        .ok_or_else(|| format!("unexpected test binary location {}", exe.display()))?;
    let target = profile_dir
        .parent()
        .ok_or_else(|| format!("unexpected test binary location {}", exe.display()))?;
    let profile = profile_dir
        .file_name()
        .and_then(|n| n.to_str())
        .ok_or_else(|| format!("unexpected test binary location {}", exe.display()))?;
    Ok((target.to_path_buf(), profile.to_owned()))
}

fn build_and_locate() -> Result<Binaries, String> {
    let dir = match std::env::var_os("TESSERA_E2E_BIN_DIR") {
        Some(dir) => PathBuf::from(dir),
        None => build()?,
    };
    let locate = |name: &str| {
        let path = dir.join(name);
        if path.is_file() {
            Ok(path)
        } else {
            Err(format!("binary {} not found", path.display()))
        }
    };
    Ok(Binaries {
        photo_provider: locate("photo-provider")?,
        printshop: locate("printshop")?,
        photo_cli: locate("photo-cli")?,
    })
}

/// Runs `cargo build` for the demo binaries and returns the directory holding them.
fn build() -> Result<PathBuf, String> {
    let (main_target, profile) = target_and_profile()?;
    let target = main_target.join("tessera-e2e");
    std::fs::create_dir_all(&target).map_err(|e| format!("create {}: {e}", target.display()))?;
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut command = Command::new(cargo);
    command.arg("build").arg("--quiet");
    for name in DEMO_BINARIES {
        command.args(["-p", name, "--bin", name]);
    }
    match profile.as_str() {
        "debug" => {}
        "release" => {
            command.arg("--release");
        }
        other => {
            command.args(["--profile", other]);
        }
    }
    let log = target.join(format!("tessera-e2e-build-{}.log", std::process::id()));
    let out = std::fs::File::create(&log).map_err(|e| format!("create {}: {e}", log.display()))?;
    let err = out
        .try_clone()
        .map_err(|e| format!("clone {}: {e}", log.display()))?;
    command
        .current_dir(workspace_root())
        .env("CARGO_TARGET_DIR", &target)
        .stdin(Stdio::null())
        .stdout(Stdio::from(out))
        .stderr(Stdio::from(err));
    let timeout = std::env::var("TESSERA_E2E_BUILD_TIMEOUT_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .map(Duration::from_secs)
        .unwrap_or(DEFAULT_BUILD_TIMEOUT);
    let started = Instant::now();
    let mut child = command
        .spawn()
        .map_err(|e| format!("cannot run cargo build: {e}"))?;
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if started.elapsed() > timeout => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!(
                    "cargo build of {DEMO_BINARIES:?} took longer than {timeout:?}; output ends with:\n{}",
                    log_tail(&log, 4000)
                ));
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(200)),
            Err(e) => return Err(format!("cannot wait for cargo build: {e}")),
        }
    };
    if !status.success() {
        return Err(format!(
            "cargo build of {DEMO_BINARIES:?} failed ({status}); output ends with:\n{}",
            log_tail(&log, 8000)
        ));
    }
    let _ = std::fs::remove_file(&log);
    Ok(target.join(profile))
}
