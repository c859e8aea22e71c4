//! Test hooks for crash tests: when `UPLOAD_FAILPOINT` names a point, the worker
//! says so on stderr when it gets there and stops for good, so that a test can kill
//! the process at exactly that step. Unset (as in production), a point costs one
//! comparison.

use std::sync::OnceLock;

/// The crash points a test can name.
pub const POINTS: [&str; 7] = [
    "scan.mid-read",
    "scan.verdict",
    "preview.mid",
    "move.before-copy",
    "move.after-copy",
    "move.after-record",
    "rescan.target-done",
];

fn armed() -> Option<&'static str> {
    static ARMED: OnceLock<Option<String>> = OnceLock::new();
    ARMED
        .get_or_init(|| std::env::var("UPLOAD_FAILPOINT").ok())
        .as_deref()
}

/// Stops here for good when `name` is the armed point.
pub async fn reached(name: &str) {
    if armed() == Some(name) {
        eprintln!("failpoint {name} reached");
        std::future::pending::<()>().await;
    }
}
