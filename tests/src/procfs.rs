//! CPU time and memory read from `/proc`, for the benches that say where a run's
//! time went: a process's own and its reaped children's CPU seconds, its children,
//! a pid file's process, and the whole machine's busy and idle seconds.

use std::path::Path;

/// `/proc/PID/stat` after the command name: field 3 onwards.
pub fn stat(pid: u32) -> Option<Vec<u64>> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let (_, rest) = text.rsplit_once(')')?;
    Some(
        rest.split_whitespace()
            .skip(1)
            .map(|f| f.parse().unwrap_or(0))
            .collect(),
    )
}

/// Clock ticks per second, as `/proc` counts CPU time (asked once).
pub fn ticks() -> f64 {
    static TICKS: std::sync::OnceLock<f64> = std::sync::OnceLock::new();
    *TICKS.get_or_init(|| {
        std::process::Command::new("getconf")
            .arg("CLK_TCK")
            .output()
            .ok()
            .and_then(|o| String::from_utf8_lossy(&o.stdout).trim().parse().ok())
            .unwrap_or(100.0)
    })
}

/// A process's own CPU seconds and its waited-for children's.
pub fn cpu(pid: u32) -> (f64, f64) {
    let t = ticks();
    // After the name: ppid is index 0 (field 4); utime, stime, cutime, cstime
    // are fields 14..=17.
    stat(pid).map_or((0.0, 0.0), |f| {
        ((f[10] + f[11]) as f64 / t, (f[12] + f[13]) as f64 / t)
    })
}

/// A process's CPU seconds with its waited-for children's.
pub fn cpu_whole(pid: u32) -> f64 {
    let (own, theirs) = cpu(pid);
    own + theirs
}

/// Every live process whose parent is `parent`.
pub fn children_of(parent: u32) -> Vec<u32> {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|&pid| stat(pid).is_some_and(|f| <[u64]>::first(&f) == Some(&u64::from(parent))))
        .collect()
}

/// The process whose pid the stack wrote to `path`.
pub fn pid_file(path: &Path) -> u32 {
    std::fs::read_to_string(path)
        .unwrap_or_else(|_| panic!("{} (is the stack up?)", path.display()))
        .lines()
        .next()
        .and_then(|l| l.trim().parse().ok())
        .unwrap_or_else(|| panic!("a pid in {}", path.display()))
}

/// A `kB` figure of `/proc/PID/status` (`VmRSS`, `VmHWM` …); `None` once it is gone.
fn status_kib(pid: u32, field: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}

/// A process's resident memory now, in MiB.
pub fn rss_mib(pid: u32) -> f64 {
    status_kib(pid, "VmRSS").unwrap_or(0) as f64 / 1024.0
}

/// A process's peak resident memory so far (VmHWM), in KiB; `None` once it is gone.
pub fn peak_rss_kib(pid: u32) -> Option<u64> {
    status_kib(pid, "VmHWM")
}

/// The machine's CPU seconds since boot, summed over its cores: (busy, idle),
/// idle counting time waiting for the disk.
pub fn machine_cpu() -> (f64, f64) {
    let text = std::fs::read_to_string("/proc/stat").unwrap_or_default();
    let fields: Vec<f64> = text
        .lines()
        .next()
        .unwrap_or_default()
        .split_whitespace()
        .skip(1)
        .map(|f| f.parse().unwrap_or(0.0))
        .collect();
    let t = ticks();
    // user nice system idle iowait irq softirq steal (guest time is in user).
    let idle = fields.get(3).copied().unwrap_or(0.0) + fields.get(4).copied().unwrap_or(0.0);
    let busy: f64 = fields.iter().take(8).sum::<f64>() - idle;
    (busy / t, idle / t)
}

/// Every live process: its pid and command line, arguments joined by spaces.
pub fn processes() -> Vec<(u32, String)> {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter_map(|pid| {
            let raw = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
            let line = String::from_utf8_lossy(&raw).replace('\0', " ");
            Some((pid, line.trim_end().to_owned()))
        })
        .collect()
}

/// CPU seconds of processes that come and go during a run (a browser's), summed by
/// class: every live process the classifier names is read every `every`, and each
/// keeps the own CPU time of its last reading (a process's last moments after it
/// are missed; a process already running at the first reading counts from there).
pub struct CpuSampler {
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    thread: std::thread::JoinHandle<std::collections::BTreeMap<&'static str, f64>>,
}

impl CpuSampler {
    /// Starts reading on a thread of its own.
    pub fn start(classify: fn(&str) -> Option<&'static str>, every: std::time::Duration) -> Self {
        use std::collections::HashMap;
        use std::sync::atomic::Ordering;
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let stopped = stop.clone();
        let thread = std::thread::spawn(move || {
            // pid → (class, CPU seconds when first seen, at the last reading).
            let mut seen: HashMap<u32, (&'static str, f64, f64)> = HashMap::new();
            let mut first = true;
            loop {
                for (pid, line) in processes() {
                    if let Some(class) = classify(&line) {
                        let (own, _) = cpu(pid);
                        let from = if first { own } else { 0.0 };
                        seen.entry(pid).or_insert((class, from, own)).2 = own;
                    }
                }
                first = false;
                if stopped.load(Ordering::Relaxed) {
                    break;
                }
                std::thread::sleep(every);
            }
            let mut by_class = std::collections::BTreeMap::new();
            for (class, first, last) in seen.into_values() {
                *by_class.entry(class).or_insert(0.0) += last - first;
            }
            by_class
        });
        CpuSampler { stop, thread }
    }

    /// Stops reading (after one last reading) and answers the CPU seconds by class.
    pub fn stop(self) -> std::collections::BTreeMap<&'static str, f64> {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        self.thread.join().unwrap_or_default()
    }
}
