//! What the benchmarks read from the machine: cores to pin to, per-thread
//! CPU time (`/proc/self/task/*/schedstat`) and resident memory (`/proc/self/statm`).

use core_affinity::CoreId;

/// Which core runs what. With two or more cores the load generator gets
/// the first and the server the second, so they never share one.
#[derive(Debug, Clone, Copy)]
pub struct Cores {
    pub load: Option<CoreId>,
    pub server: Option<CoreId>,
}

impl Cores {
    pub fn plan(pin: bool) -> Self {
        let ids = if pin {
            core_affinity::get_core_ids().unwrap_or_default()
        } else {
            Vec::new()
        };
        match ids.as_slice() {
            [load, server, ..] => Self {
                load: Some(*load),
                server: Some(*server),
            },
            _ => Self {
                load: None,
                server: None,
            },
        }
    }

    pub fn describe(&self) -> String {
        match (self.load, self.server) {
            (Some(l), Some(s)) => format!(
                "pinned: load generator on cpu{}, server (its runtime and blocking threads) on cpu{}",
                l.id, s.id
            ),
            _ => "not pinned (fewer than two cores visible, or --no-pin)".into(),
        }
    }
}

/// Pins the calling thread; false when it could not.
pub fn pin(core: Option<CoreId>) -> bool {
    core.is_some_and(core_affinity::set_for_current)
}

/// On-CPU time used so far by this process's threads, split into the
/// server runtime's threads (named `bench-server`) and all others (the load
/// generator), from `/proc/self/task/*/schedstat`, in nanoseconds.
#[derive(Debug, Clone, Copy, Default)]
pub struct ThreadCpu {
    server: u64,
    other: u64,
}

impl ThreadCpu {
    pub fn read() -> Self {
        let mut t = Self::default();
        let Ok(tasks) = std::fs::read_dir("/proc/self/task") else {
            return t;
        };
        for task in tasks.flatten() {
            let path = task.path();
            let comm = std::fs::read_to_string(path.join("comm")).unwrap_or_default();
            let ns = std::fs::read_to_string(path.join("schedstat"))
                .ok()
                .and_then(|s| s.split_whitespace().next()?.parse::<u64>().ok())
                .unwrap_or(0);
            if comm.starts_with("bench-server") {
                t.server += ns;
            } else {
                t.other += ns;
            }
        }
        t
    }

    /// Nanoseconds of load-generator (non-server) CPU since `earlier`.
    pub fn other_ns_since(&self, earlier: &Self) -> u64 {
        self.other.saturating_sub(earlier.other)
    }

    /// Nanoseconds of server-thread CPU since `earlier`.
    pub fn server_ns_since(&self, earlier: &Self) -> u64 {
        self.server.saturating_sub(earlier.server)
    }
}

/// Resident set size in bytes: `/proc/self/statm`'s second field (pages)
/// times the page size (`/proc/self/smaps_rollup` names it; 4 KiB otherwise).
pub fn rss_bytes() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    let pages: u64 = statm
        .split_whitespace()
        .nth(1)
        .and_then(|p| p.parse().ok())
        .unwrap_or(0);
    pages * page_size()
}

fn page_size() -> u64 {
    static PAGE: std::sync::OnceLock<u64> = std::sync::OnceLock::new();
    *PAGE.get_or_init(|| {
        let smaps = std::fs::read_to_string("/proc/self/smaps").unwrap_or_default();
        smaps
            .lines()
            .find_map(|l| l.strip_prefix("KernelPageSize:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
            .map_or(4096, |kb| kb * 1024)
    })
}
