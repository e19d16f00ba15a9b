//! Running a provider binary on a free loopback port for the duration of a test.

use std::io::{Read as _, Seek as _, SeekFrom};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use crate::{Failure, Target};

/// How long a provider may take to answer its metadata after starting.
pub const STARTUP_TIMEOUT: Duration = Duration::from_secs(60);

/// How long building a provider binary may take (2 cores, cold cache).
/// Override with `TESSERA_CONFORMANCE_BUILD_TIMEOUT_SECS`.
const BUILD_TIMEOUT: Duration = Duration::from_secs(30 * 60);

/// A provider process listening on `127.0.0.1:{port}`, killed on drop.
#[derive(Debug)]
pub struct ProviderProcess {
    child: Child,
    target: Target,
    log: PathBuf,
}

/// A provider under test: spawned here, or already running elsewhere
/// (`TESSERA_CONFORMANCE_BASE_URL`).
#[derive(Debug)]
pub struct Provider {
    target: Target,
    process: Option<ProviderProcess>,
}

impl Provider {
    /// The provider named by `TESSERA_CONFORMANCE_BASE_URL` if set, otherwise
    /// the workspace binary `bin` (built if needed) spawned on a free port
    /// with `--store {store}` (`memory` or a `redis://` URL). More flags
    /// may follow the store, separated by spaces (store URLs have none):
    /// `memory --access-tokens jwt` runs the suite against JWT access tokens.
    pub async fn start(bin: &str, store: &str) -> Result<Self, Failure> {
        if let Ok(url) = std::env::var("TESSERA_CONFORMANCE_BASE_URL") {
            return Ok(Self {
                target: Target::new(url),
                process: None,
            });
        }
        let path = locate_binary(bin)?;
        let mut args = vec!["--store"];
        args.extend(store.split_whitespace());
        let process = ProviderProcess::spawn(&path, &args).await?;
        Ok(Self {
            target: process.target().clone(),
            process: Some(process),
        })
    }

    /// The base URL to test.
    pub fn target(&self) -> &Target {
        &self.target
    }

    /// The last lines the provider wrote, if it runs here.
    pub fn log_tail(&self) -> String {
        self.process
            .as_ref()
            .map_or_else(String::new, ProviderProcess::log_tail)
    }

    /// Runs one check and panics with its failure and the provider's log tail.
    pub async fn run<F, Fut>(&self, name: &str, check: F)
    where
        F: FnOnce(Target) -> Fut,
        Fut: std::future::Future<Output = Result<(), Failure>>,
    {
        let outcome = tokio::time::timeout(crate::CHECK_TIMEOUT, check(self.target.clone())).await;
        let failure = match outcome {
            Ok(Ok(())) => return,
            Ok(Err(f)) => f,
            Err(_) => Failure::new(format!(
                "the check did not finish within {:?}",
                crate::CHECK_TIMEOUT
            )),
        };
        let tail = self.log_tail();
        if tail.is_empty() {
            panic!("{name} against {} failed:\n{failure}", self.target.base_url);
        }
        panic!(
            "{name} against {} failed:\n{failure}\n--- provider log (tail) ---\n{tail}",
            self.target.base_url
        );
    }
}

fn free_port() -> Result<u16, Failure> {
    let l = std::net::TcpListener::bind("127.0.0.1:0")
        .map_err(|e| Failure::new(format!("cannot bind a loopback port: {e}")))?;
    l.local_addr()
        .map(|a| a.port())
        .map_err(|e| Failure::new(format!("cannot read the bound port: {e}")))
}

impl ProviderProcess {
    /// Starts `bin --listen 127.0.0.1:{port} --issuer http://127.0.0.1:{port} {args}`
    /// on a free port and waits (at most [`STARTUP_TIMEOUT`]) until its RFC 8414
    /// metadata answers 200. Retries on another port if the process exits early
    /// (the port may have been taken in between).
    pub async fn spawn(bin: &Path, args: &[&str]) -> Result<Self, Failure> {
        Self::spawn_with_issuer(bin, None, args).await
    }

    /// Like [`spawn`](Self::spawn), with `--issuer {issuer}` instead of the
    /// process's own URL when `issuer` is given: several instances sharing a
    /// store then issue under one issuer. The [`target`](Self::target) is
    /// still where this process listens (its metadata names the issuer's URLs).
    pub async fn spawn_with_issuer(
        bin: &Path,
        issuer: Option<&str>,
        args: &[&str],
    ) -> Result<Self, Failure> {
        let mut last = None;
        for _ in 0..3 {
            match Self::try_spawn(bin, issuer, args).await {
                Ok(p) => return Ok(p),
                Err(e) => last = Some(e),
            }
        }
        Err(last.unwrap_or_else(|| Failure::new("could not start the provider")))
    }

    async fn try_spawn(bin: &Path, issuer: Option<&str>, args: &[&str]) -> Result<Self, Failure> {
        static SEQ: AtomicU32 = AtomicU32::new(0);
        let port = free_port()?;
        let listen = format!("127.0.0.1:{port}");
        let base_url = format!("http://{listen}");
        let issuer = issuer.map_or_else(|| base_url.clone(), str::to_owned);
        let name = bin
            .file_name()
            .map_or_else(|| "provider".into(), |n| n.to_string_lossy().into_owned());
        let log = std::env::temp_dir().join(format!(
            "tessera-conformance-{name}-{}-{}.log",
            std::process::id(),
            SEQ.fetch_add(1, Ordering::Relaxed)
        ));
        let out = std::fs::File::create(&log)
            .map_err(|e| Failure::new(format!("cannot create {}: {e}", log.display())))?;
        let err = out
            .try_clone()
            .map_err(|e| Failure::new(format!("cannot reopen {}: {e}", log.display())))?;
        let child = Command::new(bin)
            .arg("--listen")
            .arg(&listen)
            .arg("--issuer")
            .arg(&issuer)
            .args(args)
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .map_err(|e| Failure::new(format!("cannot start {}: {e}", bin.display())))?;
        let mut process = Self {
            child,
            target: Target::new(base_url),
            log,
        };
        process.wait_ready().await?;
        Ok(process)
    }

    async fn wait_ready(&mut self) -> Result<(), Failure> {
        let url = self.target.metadata_url();
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(2))
            .build()
            .map_err(|e| Failure::new(format!("cannot build an HTTP client: {e}")))?;
        let started = Instant::now();
        let mut last = String::from("no answer yet");
        while started.elapsed() < STARTUP_TIMEOUT {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Err(Failure::new(format!(
                    "the provider exited during startup ({status})\n--- provider log ---\n{}",
                    self.log_tail()
                )));
            }
            match client.get(&url).send().await {
                Ok(r) if r.status().as_u16() == 200 => return Ok(()),
                Ok(r) => last = format!("GET {url} answered {}", r.status()),
                Err(e) => last = format!("GET {url}: {e}"),
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Err(Failure::new(format!(
            "the provider did not answer its metadata within {STARTUP_TIMEOUT:?}: {last}\n--- provider log ---\n{}",
            self.log_tail()
        )))
    }

    /// The base URL of the running provider (its issuer, unless
    /// [`spawn_with_issuer`](Self::spawn_with_issuer) named another).
    pub fn target(&self) -> &Target {
        &self.target
    }

    /// The process id, e.g. to read its memory use from `/proc`.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Whether the process is still running; `Err` with its exit status
    /// (and log tail) once it has exited.
    pub fn check_running(&mut self) -> Result<(), Failure> {
        match self.child.try_wait() {
            Ok(None) => Ok(()),
            Ok(Some(status)) => Err(Failure::new(format!(
                "the provider exited ({status})\n--- provider log ---\n{}",
                self.log_tail()
            ))),
            Err(e) => Err(Failure::new(format!("cannot wait on the provider: {e}"))),
        }
    }

    /// The last 6 KiB the provider wrote to stdout and stderr.
    pub fn log_tail(&self) -> String {
        let Ok(mut f) = std::fs::File::open(&self.log) else {
            return String::new();
        };
        let len = f.metadata().map(|m| m.len()).unwrap_or(0);
        let _ = f.seek(SeekFrom::Start(len.saturating_sub(6 * 1024)));
        let mut buf = Vec::new();
        let _ = f.read_to_end(&mut buf);
        String::from_utf8_lossy(&buf).into_owned()
    }
}

impl Drop for ProviderProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::env::var_os("TESSERA_CONFORMANCE_KEEP_LOGS").is_none() {
            let _ = std::fs::remove_file(&self.log);
        }
    }
}

/// The workspace root (the parent of this crate's folder).
pub fn workspace_root() -> PathBuf {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    manifest.parent().unwrap_or(manifest).to_path_buf()
}

/// `(target dir, profile dir)` of the running test executable
/// (`<target>/<profile>/deps/<test>-<hash>`); `CARGO_TARGET_DIR` or
/// `<workspace>/target` and `debug` when that layout is not recognised.
fn target_and_profile() -> (PathBuf, String) {
    let from_exe = std::env::current_exe().ok().and_then(|exe| {
        let deps = exe.parent()?;
        if deps.file_name()? != "deps" {
            return None;
        }
        let profile_dir = deps.parent()?;
        let profile = profile_dir.file_name()?.to_str()?.to_owned();
        Some((profile_dir.parent()?.to_path_buf(), profile))
    });
    from_exe.unwrap_or_else(|| {
        let target = std::env::var_os("CARGO_TARGET_DIR")
            .map(PathBuf::from)
            .map_or_else(
                || workspace_root().join("target"),
                |t| {
                    if t.is_absolute() {
                        t
                    } else {
                        workspace_root().join(t)
                    }
                },
            );
        (target, "debug".to_owned())
    })
}

/// The path of workspace binary `bin` (package of the same name).
///
/// `TESSERA_CONFORMANCE_BIN_DIR` names a directory of prebuilt binaries.
/// Otherwise `cargo build -p {bin}` runs once per test process, in the same
/// target directory and profile as the running test: a no-op after
/// `cargo test --workspace`, and a rebuild when the binary is stale or missing.
pub fn locate_binary(bin: &str) -> Result<PathBuf, Failure> {
    static BUILT: Mutex<Vec<(String, Result<PathBuf, String>)>> = Mutex::new(Vec::new());
    if let Some(dir) = std::env::var_os("TESSERA_CONFORMANCE_BIN_DIR") {
        let path = PathBuf::from(dir).join(bin);
        return if path.is_file() {
            Ok(path)
        } else {
            Err(Failure::new(format!(
                "{} does not exist (TESSERA_CONFORMANCE_BIN_DIR)",
                path.display()
            )))
        };
    }
    let mut built = BUILT.lock().unwrap_or_else(|p| p.into_inner());
    if let Some((_, r)) = built.iter().find(|(b, _)| b == bin) {
        return r.clone().map_err(Failure::new);
    }
    let result = build(bin);
    built.push((bin.to_owned(), result.clone()));
    result.map_err(Failure::new)
}

fn build(bin: &str) -> Result<PathBuf, String> {
    let (target, profile) = target_and_profile();
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let timeout = std::env::var("TESSERA_CONFORMANCE_BUILD_TIMEOUT_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .map_or(BUILD_TIMEOUT, Duration::from_secs);
    let log = std::env::temp_dir().join(format!(
        "tessera-conformance-build-{bin}-{}.log",
        std::process::id()
    ));
    let out =
        std::fs::File::create(&log).map_err(|e| format!("cannot create {}: {e}", log.display()))?;
    let err = out
        .try_clone()
        .map_err(|e| format!("cannot reopen {}: {e}", log.display()))?;
    let mut cmd = Command::new(&cargo);
    cmd.current_dir(workspace_root())
        .arg("build")
        .arg("-p")
        .arg(bin)
        .arg("--bin")
        .arg(bin)
        .env("CARGO_TARGET_DIR", &target)
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err);
    match profile.as_str() {
        "debug" => {}
        "release" => {
            cmd.arg("--release");
        }
        other => {
            cmd.arg("--profile").arg(other);
        }
    }
    let mut child = cmd
        .spawn()
        .map_err(|e| format!("cannot run {}: {e}", Path::new(&cargo).display()))?;
    let started = Instant::now();
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if started.elapsed() > timeout => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!(
                    "`cargo build -p {bin}` did not finish within {timeout:?}"
                ));
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(200)),
            Err(e) => return Err(format!("waiting for cargo: {e}")),
        }
    };
    let output = std::fs::read_to_string(&log).unwrap_or_default();
    let _ = std::fs::remove_file(&log);
    if !status.success() {
        let tail: String = output
            .lines()
            .rev()
            .take(60)
            .collect::<Vec<_>>()
            .into_iter()
            .rev()
            .collect::<Vec<_>>()
            .join("\n");
        return Err(format!("`cargo build -p {bin}` failed ({status}):\n{tail}"));
    }
    let path = target.join(&profile).join(bin);
    if path.is_file() {
        Ok(path)
    } else {
        Err(format!(
            "`cargo build -p {bin}` succeeded but {} does not exist",
            path.display()
        ))
    }
}
