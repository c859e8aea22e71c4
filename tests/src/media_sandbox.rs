//! The media sandbox as systemd runs it in production (socket activation with
//! `Accept=yes`), on a test's own socket: every connection starts the sandbox
//! program with the connection as its stdin and stdout, as another user when
//! asked (through `setpriv`, the test running as root).

use std::os::fd::OwnedFd;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

/// The user the sandbox runs as in tests: `nobody`.
pub const SANDBOX_UID: u32 = 65534;

/// A listening media sandbox; stops listening when dropped.
pub struct MediaSandbox {
    /// The socket, for `UPLOAD_MEDIA_SANDBOX_SOCKET`.
    pub socket: PathBuf,
    runs: Arc<AtomicU64>,
    task: tokio::task::JoinHandle<()>,
    _dir: tempfile::TempDir,
}

impl Drop for MediaSandbox {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl MediaSandbox {
    /// Listens, starting `program` (the sandbox's side, `test-media-sandbox`) for
    /// each connection: as [`SANDBOX_UID`] when `own_user` is true, else as the
    /// test's own user.
    pub fn start(program: &str, own_user: bool) -> Self {
        let dir = tempfile::Builder::new()
            .prefix("media-sandbox-")
            .tempdir()
            .expect("a socket directory");
        let socket = dir.path().join("media.sock");
        let listener = tokio::net::UnixListener::bind(&socket).expect("bind the sandbox socket");
        let runs = Arc::new(AtomicU64::new(0));
        let counted = Arc::clone(&runs);
        let program = program.to_owned();
        let task = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                counted.fetch_add(1, Ordering::SeqCst);
                let Ok(std_stream) = stream.into_std() else {
                    continue;
                };
                let _ = std_stream.set_nonblocking(false);
                let input: OwnedFd = std_stream.into();
                let Ok(output) = input.try_clone() else {
                    continue;
                };
                let mut command = if own_user {
                    let mut c = tokio::process::Command::new("/usr/bin/setpriv");
                    c.args([
                        &format!("--reuid={SANDBOX_UID}"),
                        &format!("--regid={SANDBOX_UID}"),
                        "--clear-groups",
                        "--inh-caps=-all",
                        "--bounding-set=-all",
                        "--no-new-privs",
                        "--",
                        &program,
                    ]);
                    c
                } else {
                    tokio::process::Command::new(&program)
                };
                // The sandbox's environment: its own settings, nothing of the worker's.
                command
                    .env_clear()
                    .env("TMPDIR", std::env::temp_dir())
                    .env("RUST_LOG", "warn")
                    .stdin(std::process::Stdio::from(input))
                    .stdout(std::process::Stdio::from(output))
                    .kill_on_drop(true);
                if let Ok(mut child) = command.spawn() {
                    tokio::spawn(async move {
                        let _ = child.wait().await;
                    });
                }
            }
        });
        Self {
            socket,
            runs,
            task,
            _dir: dir,
        }
    }

    /// Connections taken so far: one per ffmpeg or ffprobe run.
    pub fn runs(&self) -> u64 {
        self.runs.load(Ordering::SeqCst)
    }
}
