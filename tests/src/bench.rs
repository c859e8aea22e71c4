//! What the benchmarks share: their settings from the environment, and the release
//! binaries they run as processes of their own (so that a process's CPU and memory
//! are read apart from the benchmark's clients).

use std::path::{Path, PathBuf};

/// The setting `name` from the environment, or `default` when unset or unreadable.
pub fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(default)
}

/// A release binary of ours as a child process, killed however the run ends.
pub struct ReleaseProcess(pub std::process::Child);

impl Drop for ReleaseProcess {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The release build of binary `name`; panics, saying how to build it, when missing.
pub fn release_binary(name: &str) -> PathBuf {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("../target/release/{name}"));
    assert!(
        path.exists(),
        "build it first: cargo build --release -p upload-server -p upload-worker"
    );
    path
}
