//! The worker as its own process (the `test-worker` binary, which runs the same
//! `upload_worker::run`), for tests that kill it.

use std::process::Stdio;
use std::time::{Duration, Instant};

use tokio::io::{AsyncBufReadExt, BufReader};

use crate::TestApp;

/// The worker as its own process (the `test-worker` binary, which runs the same
/// `upload_worker::run`), for tests that kill it.
pub struct WorkerProcess {
    child: tokio::process::Child,
    reached: tokio::sync::mpsc::UnboundedReceiver<String>,
}

impl WorkerProcess {
    /// Starts the worker binary `exe` (each test binary passes
    /// `env!("CARGO_BIN_EXE_test-worker")`) for `app`, armed to stop at `failpoint` when one is given.
    pub fn start(exe: &str, app: &TestApp, failpoint: Option<&str>) -> Self {
        Self::start_with(exe, app, failpoint, &[])
    }

    /// [`WorkerProcess::start`], with `env` over the app's worker settings (a
    /// clamd, queues of its own).
    pub fn start_with(
        exe: &str,
        app: &TestApp,
        failpoint: Option<&str>,
        env: &[(&str, String)],
    ) -> Self {
        let mut command = tokio::process::Command::new(exe);
        command
            .env_clear()
            .envs(&app.worker_env)
            .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        if let Some(point) = failpoint {
            command.env("UPLOAD_FAILPOINT", point);
        }
        let mut child = command.spawn().expect("the test worker starts");
        let stderr = child.stderr.take().expect("stderr");
        let (tx, reached) = tokio::sync::mpsc::unbounded_channel();
        tokio::spawn(async move {
            let mut lines = BufReader::new(stderr).lines();
            while let Ok(Some(line)) = lines.next_line().await {
                if let Some(point) = line.strip_prefix("failpoint ") {
                    let _ = tx.send(point.trim_end_matches(" reached").to_owned());
                }
            }
        });
        Self { child, reached }
    }

    /// Waits until the worker stops at its failpoint; panics after `timeout`.
    pub async fn wait_for_failpoint(&mut self, timeout: Duration) -> String {
        tokio::time::timeout(timeout, self.reached.recv())
            .await
            .expect("the failpoint is reached in time")
            .expect("the worker announces its failpoint")
    }

    /// SIGKILLs the worker; returns when it is gone.
    pub async fn kill(mut self) -> Instant {
        self.child.start_kill().expect("SIGKILL");
        let _ = self.child.wait().await;
        Instant::now()
    }

    /// Stops the worker in order (SIGINT): running jobs finish and are recorded.
    pub async fn stop(mut self) {
        if let Some(pid) = self.child.id() {
            let _ = std::process::Command::new("kill")
                .args(["-INT", &pid.to_string()])
                .status();
        }
        if tokio::time::timeout(Duration::from_secs(15), self.child.wait())
            .await
            .is_err()
        {
            let _ = self.child.start_kill();
            let _ = self.child.wait().await;
        }
    }
}
