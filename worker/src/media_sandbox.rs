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

use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufReader};
use upload_config::MediaConfig;

use crate::media::{Media, MediaError};

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

/// Runs ffmpeg in the sandbox; the files it makes land in `dir`.
pub(crate) async fn ffmpeg(
    socket: &Path,
    config: &MediaConfig,
    dir: &Path,
    args: &[String],
) -> Result<(), MediaError> {
    let args = args
        .iter()
        .map(|a| match Path::new(a).strip_prefix(dir) {
            Ok(name) if a.starts_with('/') => name.to_string_lossy().into_owned(),
            _ => a.clone(),
        })
        .collect();
    let (_, files) = call(socket, config, Tool::Ffmpeg, args, Vec::new()).await?;
    for (name, bytes) in files {
        tokio::fs::write(dir.join(&name), bytes)
            .await
            .map_err(|e| spawn_error(Tool::Ffmpeg, format!("writing {name}: {e}")))?;
    }
    Ok(())
}

/// Runs ffprobe in the sandbox on a URL, or on a local file sent along; returns
/// its JSON report.
pub(crate) async fn probe(
    socket: &Path,
    config: &MediaConfig,
    input: &str,
) -> Result<Vec<u8>, MediaError> {
    if input.starts_with("http://") || input.starts_with("https://") {
        let (report, _) = call(
            socket,
            config,
            Tool::Ffprobe,
            vec![input.to_owned()],
            vec![],
        )
        .await?;
        return Ok(report);
    }
    let path = Path::new(input);
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .filter(|n| plain_name(n))
        .ok_or_else(|| spawn_error(Tool::Ffprobe, format!("{input} is not a file")))?;
    let bytes = tokio::fs::read(path)
        .await
        .map_err(|e| spawn_error(Tool::Ffprobe, format!("reading {input}: {e}")))?;
    let (report, _) = call(
        socket,
        config,
        Tool::Ffprobe,
        vec![name.clone()],
        vec![(name, bytes)],
    )
    .await?;
    Ok(report)
}

fn spawn_error(tool: Tool, message: String) -> MediaError {
    MediaError::Spawn {
        tool: tool.name(),
        source: anyhow::anyhow!(message),
    }
}

type Files = Vec<(String, Vec<u8>)>;

/// One run in the sandbox, within the run's limit plus a margin for the exchange.
async fn call(
    socket: &Path,
    config: &MediaConfig,
    tool: Tool,
    args: Vec<String>,
    inputs: Files,
) -> Result<(Vec<u8>, Files), MediaError> {
    let limit = config.timeout + EXCHANGE_MARGIN;
    let exchange = async {
        let stream = tokio::net::UnixStream::connect(socket).await.map_err(|e| {
            anyhow::anyhow!(
                "cannot reach the media sandbox at {}: {e}",
                socket.display()
            )
        })?;
        let (reader, mut writer) = stream.into_split();
        let mut reader = BufReader::new(reader);
        let hello: Hello = read_line(&mut reader).await?;
        let own = own_uid()?;
        anyhow::ensure!(
            hello.uid != 0 && hello.uid != own,
            "the media sandbox runs as uid {} ({}); it must run as a user of its own",
            hello.uid,
            if hello.uid == 0 {
                "root"
            } else {
                "the worker's own user"
            }
        );
        let run = Run {
            tool,
            args,
            inputs: inputs
                .iter()
                .map(|(name, bytes)| FileHead {
                    name: name.clone(),
                    len: bytes.len() as u64,
                })
                .collect(),
        };
        write_line(&mut writer, &run).await?;
        for (_, bytes) in &inputs {
            writer.write_all(bytes).await?;
        }
        writer.flush().await?;
        let answer: Answer = read_line(&mut reader).await?;
        let total = answer
            .files
            .iter()
            .map(|f| f.len)
            .fold(answer.report_len, u64::saturating_add);
        anyhow::ensure!(total <= MAX_PAYLOAD, "the sandbox answered {total} bytes");
        let report = read_bytes(&mut reader, answer.report_len).await?;
        let mut files = Vec::with_capacity(answer.files.len());
        for head in &answer.files {
            anyhow::ensure!(
                plain_name(&head.name),
                "the sandbox named a file {:?}",
                head.name
            );
            files.push((head.name.clone(), read_bytes(&mut reader, head.len).await?));
        }
        anyhow::Ok((answer.failure, report, files))
    };
    let (failure, report, files) = tokio::time::timeout(limit, exchange)
        .await
        .map_err(|_| MediaError::Timeout {
            tool: tool.name(),
            limit,
        })?
        .map_err(|e| MediaError::Spawn {
            tool: tool.name(),
            source: e,
        })?;
    match failure {
        None => Ok((report, files)),
        Some(Failure::Spawn(message)) => Err(spawn_error(tool, message)),
        Some(Failure::Timeout(secs)) => Err(MediaError::Timeout {
            tool: tool.name(),
            limit: Duration::from_secs(secs),
        }),
        Some(Failure::Failed { status, message }) => Err(MediaError::Failed {
            tool: tool.name(),
            status,
            message,
        }),
    }
}

/// The sandbox's side of one connection: says who it runs as, takes one run,
/// runs it in a scratch directory of its own and answers. `config` gives the
/// tools' paths and limits (the sandbox's own settings, no secret among them).
pub async fn serve<R, W>(config: MediaConfig, reader: R, mut writer: W) -> anyhow::Result<()>
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    write_line(&mut writer, &Hello { uid: own_uid()? }).await?;
    writer.flush().await?;
    let mut reader = BufReader::new(reader);
    let run: Run = read_line(&mut reader).await?;
    let scratch = tempfile::Builder::new().prefix("upload-media-").tempdir()?;
    let dir = scratch.path();
    let mut total = 0u64;
    for input in &run.inputs {
        anyhow::ensure!(plain_name(&input.name), "input named {:?}", input.name);
        total = total.saturating_add(input.len);
        anyhow::ensure!(total <= MAX_PAYLOAD, "inputs over {MAX_PAYLOAD} bytes");
        let bytes = read_bytes(&mut reader, input.len).await?;
        tokio::fs::write(dir.join(&input.name), bytes).await?;
    }
    let media = Media::new(MediaConfig {
        sandbox_socket: None,
        ..config
    });
    let outcome = match (run.tool, run.args.as_slice()) {
        (Tool::Ffmpeg, args) => media.ffmpeg_here(dir, args).await.map(|()| Vec::new()),
        (Tool::Ffprobe, [input]) => media.probe_here(input, Some(dir)).await,
        (Tool::Ffprobe, _) => Err(MediaError::Spawn {
            tool: "ffprobe",
            source: anyhow::anyhow!("ffprobe takes one input"),
        }),
    };
    let (failure, report) = match outcome {
        Ok(report) => (None, report),
        Err(MediaError::Timeout { limit, .. }) => (Some(Failure::Timeout(limit.as_secs())), vec![]),
        Err(MediaError::Failed {
            status, message, ..
        }) => (Some(Failure::Failed { status, message }), vec![]),
        Err(e) => (Some(Failure::Spawn(e.to_string())), vec![]),
    };
    let mut files = Vec::new();
    if failure.is_none() && run.tool == Tool::Ffmpeg {
        let mut entries = tokio::fs::read_dir(dir).await?;
        while let Some(entry) = entries.next_entry().await? {
            let name = entry.file_name().to_string_lossy().into_owned();
            if entry.file_type().await?.is_file() && !run.inputs.iter().any(|i| i.name == name) {
                files.push((name, tokio::fs::read(entry.path()).await?));
            }
        }
    }
    let answer = Answer {
        failure,
        report_len: report.len() as u64,
        files: files
            .iter()
            .map(|(name, bytes)| FileHead {
                name: name.clone(),
                len: bytes.len() as u64,
            })
            .collect(),
    };
    write_line(&mut writer, &answer).await?;
    writer.write_all(&report).await?;
    for (_, bytes) in &files {
        writer.write_all(bytes).await?;
    }
    writer.flush().await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

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
        let err = probe(&socket, &config, "http://127.0.0.1:9/x")
            .await
            .unwrap_err();
        assert!(
            err.to_string().contains("must run as a user of its own"),
            "{err}"
        );
        sandbox.await.unwrap();
    }
}
