//! The worker's side of the media sandbox: one connection per run, the sandbox
//! refused when it runs as root or as the worker's own user.

use std::path::Path;
use std::time::Duration;

use tokio::io::{AsyncWriteExt, BufReader};
use upload_config::MediaConfig;

use super::{
    Answer, EXCHANGE_MARGIN, Failure, FileHead, Hello, MAX_PAYLOAD, Run, Tool, own_uid, plain_name,
    read_bytes, read_line, write_line,
};
use crate::media::MediaError;

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

/// Runs ffprobe in the sandbox on a URL, or on a local file sent along, reading
/// it with `formats` (demuxers) alone; returns its JSON report.
pub(crate) async fn probe(
    socket: &Path,
    config: &MediaConfig,
    input: &str,
    formats: &str,
) -> Result<Vec<u8>, MediaError> {
    if input.starts_with("http://") || input.starts_with("https://") {
        let (report, _) = call(
            socket,
            config,
            Tool::Ffprobe,
            vec![formats.to_owned(), input.to_owned()],
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
        vec![formats.to_owned(), name.clone()],
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

/// The sandbox's socket did not answer the connection.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
struct Unreachable(String);

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
        let stream = tokio::net::UnixStream::connect(socket)
            .await
            .map_err(|e| Unreachable(format!("{}: {e}", socket.display())))?;
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
        .map_err(|e| match e.downcast::<Unreachable>() {
            Ok(Unreachable(why)) => MediaError::Unreachable(why),
            Err(e) => MediaError::Spawn {
                tool: tool.name(),
                source: e,
            },
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
