//! Child processes that die with their guard, free ports, and bounded readiness waits.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::net::TcpListener;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A child process (and its whole process group) killed when the guard drops,
/// including while a failed test unwinds.
#[derive(Debug)]
pub struct ChildGuard {
    name: String,
    child: Child,
    log: PathBuf,
}

impl ChildGuard {
    /// Spawns `command` as the leader of a new process group, with stdout and
    /// stderr appended to `log`.
    pub fn spawn(name: &str, mut command: Command, log: &Path) -> Result<Self, String> {
        let out = File::create(log).map_err(|e| format!("create {}: {e}", log.display()))?;
        let err = out
            .try_clone()
            .map_err(|e| format!("clone {}: {e}", log.display()))?;
        // Its own process group, so that grandchildren (Chromium under
        // chromedriver) can be killed with it.
        command
            .stdin(Stdio::null())
            .stdout(Stdio::from(out))
            .stderr(Stdio::from(err))
            .process_group(0);
        let child = command
            .spawn()
            .map_err(|e| format!("cannot start {name} ({command:?}): {e}"))?;
        Ok(Self {
            name: name.to_owned(),
            child,
            log: log.to_owned(),
        })
    }

    /// Spawns `command` as [`ChildGuard::spawn`] does, but with stdout and
    /// stderr in two files: `log` (stderr) and `stdout`.
    pub fn spawn_split(
        name: &str,
        mut command: Command,
        log: &Path,
        stdout: &Path,
    ) -> Result<Self, String> {
        let out = File::create(stdout).map_err(|e| format!("create {}: {e}", stdout.display()))?;
        let err = File::create(log).map_err(|e| format!("create {}: {e}", log.display()))?;
        command
            .stdin(Stdio::null())
            .stdout(Stdio::from(out))
            .stderr(Stdio::from(err))
            .process_group(0);
        let child = command
            .spawn()
            .map_err(|e| format!("cannot start {name} ({command:?}): {e}"))?;
        Ok(Self {
            name: name.to_owned(),
            child,
            log: log.to_owned(),
        })
    }

    /// The exit status if the child has exited, without waiting.
    pub fn try_status(&mut self) -> Result<Option<std::process::ExitStatus>, String> {
        self.child
            .try_wait()
            .map_err(|e| format!("cannot check on {}: {e}", self.name))
    }

    /// The process id.
    pub fn id(&self) -> u32 {
        self.child.id()
    }

    /// The log file of the child's output.
    pub fn log(&self) -> &Path {
        &self.log
    }

    /// `Err` with the exit status and the log's tail if the child has exited.
    pub fn check_alive(&mut self) -> Result<(), String> {
        match self.child.try_wait() {
            Ok(None) => Ok(()),
            Ok(Some(status)) => Err(format!(
                "{} exited early ({status}); its output ends with:\n{}",
                self.name,
                log_tail(&self.log, 4000)
            )),
            Err(e) => Err(format!("cannot check on {}: {e}", self.name)),
        }
    }
}

impl Drop for ChildGuard {
    fn drop(&mut self) {
        // Kill the whole group, even if the leader is gone: its children may not be.
        // (A pid is never reused while a process group of that id still exists.)
        let _ = Command::new("kill")
            .args(["-s", "KILL", "--", &format!("-{}", self.child.id())])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The last `max` bytes of a log file, lossily decoded.
pub fn log_tail(path: &Path, max: u64) -> String {
    let Ok(mut file) = File::open(path) else {
        return format!("(no log at {})", path.display());
    };
    let len = file.metadata().map(|m| m.len()).unwrap_or(0);
    let _ = file.seek(SeekFrom::Start(len.saturating_sub(max)));
    let mut bytes = Vec::new();
    let _ = file.read_to_end(&mut bytes);
    String::from_utf8_lossy(&bytes).into_owned()
}

/// A loopback TCP port that was free a moment ago.
pub fn free_port() -> Result<u16, String> {
    let listener =
        TcpListener::bind("127.0.0.1:0").map_err(|e| format!("cannot find a free port: {e}"))?;
    listener
        .local_addr()
        .map(|a| a.port())
        .map_err(|e| format!("cannot find a free port: {e}"))
}

/// Whether `127.0.0.1:port` can be bound right now.
pub fn port_is_free(port: u16) -> bool {
    TcpListener::bind(("127.0.0.1", port)).is_ok()
}

/// Polls `url` until it answers 2xx (returning the body), `child` dies, or `timeout` passes.
pub async fn wait_http_ok(
    http: &reqwest::Client,
    url: &str,
    child: &mut ChildGuard,
    timeout: Duration,
) -> Result<String, String> {
    let deadline = Instant::now() + timeout;
    loop {
        child.check_alive()?;
        let last = match http.get(url).send().await {
            Ok(response) if response.status().is_success() => {
                return response
                    .text()
                    .await
                    .map_err(|e| format!("GET {url}: reading body: {e}"));
            }
            Ok(response) => format!("status {}", response.status()),
            Err(e) => e.to_string(),
        };
        if Instant::now() >= deadline {
            return Err(format!(
                "{url} not ready after {timeout:?} (last: {last}); its process's output ends with:\n{}",
                log_tail(child.log(), 4000)
            ));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
