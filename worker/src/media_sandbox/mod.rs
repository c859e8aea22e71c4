//! The media sandbox: ffmpeg and ffprobe run by a process of another user, so that
//! a file crafted against a decoder reaches neither the worker's secrets (its
//! environment, its memory, the files only its user may read) nor its rights.
//!
//! In production it is systemd socket activation (`upload-media.socket` with
//! `Accept=yes`): each connection starts `upload-worker media-sandbox` as user
//! `upload-media`, sandboxed, with the connection as its stdin and stdout. One
//! connection is one run:
//!
//! 1. the sandbox says who it runs as, `{"uid":N}` on a line; the worker refuses a
//!    sandbox running as root or as the worker's own user (fails closed);
//! 2. the worker sends the run as a JSON line (tool, arguments, input files), then
//!    the input files' bytes; paths in the worker's scratch directory travel as
//!    bare names;
//! 3. the sandbox runs it in a scratch directory of its own, with the same limits
//!    as the worker would (empty environment, address-space cap, pixel cap), and
//!    answers with a JSON line (the outcome, the length of ffprobe's report, the
//!    files made), then those bytes.
//!
//! In a pod (Kubernetes), the sandbox is a container of its own beside the
//! worker's, of another user and with no secrets: `upload-worker
//! media-sandbox-server SOCKET` listens on a socket in a volume the two share and
//! serves each connection as one run, exactly as above.
//!
//! Where things live: this file the exchange's messages; `client` the worker's
//! side; `server` the sandbox's side, one connection or a listening socket.

mod client;
mod server;

pub(crate) use client::{ffmpeg, probe};
pub use server::{listen, serve};

use std::os::unix::fs::MetadataExt;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufReader};

/// The longest JSON line either side reads.
const MAX_LINE: u64 = 1 << 20;
/// The most bytes of files (and report) one run may carry either way.
const MAX_PAYLOAD: u64 = 512 << 20;
/// Time allowed beyond the run's own limit for the exchange around it.
const EXCHANGE_MARGIN: Duration = Duration::from_secs(30);

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
enum Tool {
    Ffmpeg,
    Ffprobe,
}

impl Tool {
    fn name(self) -> &'static str {
        match self {
            Tool::Ffmpeg => "ffmpeg",
            Tool::Ffprobe => "ffprobe",
        }
    }
}

#[derive(Serialize, Deserialize)]
struct Hello {
    uid: u32,
}

#[derive(Serialize, Deserialize)]
struct FileHead {
    name: String,
    len: u64,
}

#[derive(Serialize, Deserialize)]
struct Run {
    tool: Tool,
    args: Vec<String>,
    inputs: Vec<FileHead>,
}

#[derive(Serialize, Deserialize)]
enum Failure {
    Spawn(String),
    Timeout(u64),
    Failed { status: String, message: String },
}

#[derive(Serialize, Deserialize)]
struct Answer {
    failure: Option<Failure>,
    report_len: u64,
    files: Vec<FileHead>,
}

/// A file name that stays inside a scratch directory.
fn plain_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 255
        && name != "."
        && name != ".."
        && !name.contains(['/', '\0'])
}

/// The effective uid of this process (the owner of `/proc/self`).
fn own_uid() -> std::io::Result<u32> {
    Ok(std::fs::metadata("/proc/self")?.uid())
}

async fn read_line<R: AsyncRead + Unpin, T: for<'de> Deserialize<'de>>(
    reader: &mut BufReader<R>,
) -> anyhow::Result<T> {
    let mut line = String::new();
    (&mut *reader).take(MAX_LINE).read_line(&mut line).await?;
    anyhow::ensure!(line.ends_with('\n'), "the line broke off or was too long");
    Ok(serde_json::from_str(&line)?)
}

async fn write_line<W: AsyncWrite + Unpin, T: Serialize>(
    writer: &mut W,
    value: &T,
) -> anyhow::Result<()> {
    let mut line = serde_json::to_vec(value)?;
    line.push(b'\n');
    writer.write_all(&line).await?;
    Ok(())
}

async fn read_bytes<R: AsyncRead + Unpin>(reader: &mut R, len: u64) -> anyhow::Result<Vec<u8>> {
    let mut bytes = vec![0; usize::try_from(len)?];
    reader.read_exact(&mut bytes).await?;
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use upload_config::MediaConfig;

    #[test]
    fn names_stay_inside_the_scratch_directory() {
        for good in ["poster.jpg", "thumb-256.jpg", "clip.mp4", "a..b"] {
            assert!(plain_name(good), "{good}");
        }
        for bad in [
            "",
            ".",
            "..",
            "../x",
            "/etc/passwd",
            "a/b",
            "a\0b",
            &"x".repeat(256),
        ] {
            assert!(!plain_name(bad), "{bad:?}");
        }
    }

    /// The worker's side against the sandbox's side over a socket pair, in one
    /// process: the sandbox runs as the same user, so the worker refuses it.
    #[tokio::test]
    async fn a_sandbox_running_as_the_workers_user_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let socket = dir.path().join("media.sock");
        let listener = tokio::net::UnixListener::bind(&socket).unwrap();
        let env: std::collections::HashMap<String, String> = Default::default();
        let config = MediaConfig::from_source(&env).unwrap();
        let sandbox = tokio::spawn({
            let config = config.clone();
            async move {
                let (stream, _) = listener.accept().await.unwrap();
                let (r, w) = stream.into_split();
                let _ = serve(config, r, w).await;
            }
        });
        let err = probe(&socket, &config, "http://127.0.0.1:9/x", "mov")
            .await
            .unwrap_err();
        assert!(
            err.to_string().contains("must run as a user of its own"),
            "{err}"
        );
        sandbox.await.unwrap();
    }
}
