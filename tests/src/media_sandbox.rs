//! The media sandbox as systemd runs it in production (socket activation with
//! `Accept=yes`), on a test's own socket: every connection starts the sandbox
//! program with the connection as its stdin and stdout, as another user when
//! asked (through `setpriv`, the test running as root). Or as a container beside
//! the worker runs it: one process of another user listening on the socket.

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
    task: Option<tokio::task::JoinHandle<()>>,
    server: Option<tokio::process::Child>,
    _dir: tempfile::TempDir,
}

impl Drop for MediaSandbox {
    fn drop(&mut self) {
        if let Some(task) = &self.task {
            task.abort();
        }
        if let Some(server) = &mut self.server {
            let _ = server.start_kill();
        }
    }
}

/// `program` with `args`, as [`SANDBOX_UID`] and with none of the test's
/// environment.
fn as_sandbox_user(program: &str, args: &[&str]) -> tokio::process::Command {
    let mut c = tokio::process::Command::new("/usr/bin/setpriv");
    c.args([
        &format!("--reuid={SANDBOX_UID}"),
        &format!("--regid={SANDBOX_UID}"),
        "--clear-groups",
        "--inh-caps=-all",
        "--bounding-set=-all",
        "--no-new-privs",
        "--",
        program,
    ]);
    c.args(args);
    c.env_clear()
        .env("TMPDIR", std::env::temp_dir())
        .env("RUST_LOG", "warn");
    c
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
                    as_sandbox_user(&program, &[])
                } else {
                    // The sandbox's environment: its own settings, nothing of the worker's.
                    let mut c = tokio::process::Command::new(&program);
                    c.env_clear()
                        .env("TMPDIR", std::env::temp_dir())
                        .env("RUST_LOG", "warn");
                    c
                };
                command
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
            task: Some(task),
            server: None,
            _dir: dir,
        }
    }

    /// Starts `program` (`test-media-sandbox`) as [`SANDBOX_UID`] listening on a
    /// socket of its own, as the sandbox container does; returns once the socket
    /// is there.
    pub async fn start_server(program: &str) -> Self {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::Builder::new()
            .prefix("media-sandbox-")
            .tempdir()
            .expect("a socket directory");
        // The sandbox's user makes its socket here, as in the volume both share.
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o777))
            .expect("a directory the sandbox may write");
        let socket = dir.path().join("media.sock");
        let server = as_sandbox_user(program, &["--listen", &socket.to_string_lossy()])
            .kill_on_drop(true)
            .spawn()
            .expect("starting the sandbox server");
        crate::poll_until(
            "the sandbox's socket",
            std::time::Duration::from_secs(10),
            || async { (socket.exists(), ()) },
        )
        .await;
        Self {
            socket,
            runs: Arc::default(),
            task: None,
            server: Some(server),
            _dir: dir,
        }
    }

    /// Connections taken so far: one per ffmpeg or ffprobe run (0 for a server,
    /// which counts its own).
    pub fn runs(&self) -> u64 {
        self.runs.load(Ordering::SeqCst)
    }
}
