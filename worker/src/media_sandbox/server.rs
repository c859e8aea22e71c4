//! The sandbox's side: one connection as one run (over stdin and stdout under
//! systemd's socket activation), or a socket of its own that serves each
//! connection so (a container beside the worker's).

use std::path::Path;

use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt, BufReader};
use upload_config::MediaConfig;

use super::{
    Answer, Failure, FileHead, Hello, MAX_PAYLOAD, Run, Tool, own_uid, plain_name, read_bytes,
    read_line, write_line,
};
use crate::media::{Media, MediaError};

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
        (Tool::Ffprobe, [formats, input]) if plain_formats(formats) => {
            media.probe_here(input, formats, Some(dir)).await
        }
        (Tool::Ffprobe, _) => Err(MediaError::Spawn {
            tool: "ffprobe",
            source: anyhow::anyhow!("ffprobe takes its demuxers and one input"),
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

/// A demuxer list: names and commas, nothing an option parser could take for
/// more.
fn plain_formats(formats: &str) -> bool {
    !formats.is_empty()
        && formats
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b',' || b == b'_')
}

/// Serves the sandbox on a socket of its own at `path` until `shutdown`: each
/// connection is one run, as [`serve`] makes it, at most `config.concurrency` at
/// once (more wait their turn). A socket left by an earlier process is replaced;
/// the new one is reachable by this user's group (mode 0660), as the worker beside
/// it needs. Runs still going when `shutdown` comes are finished.
pub async fn listen(
    config: MediaConfig,
    path: &Path,
    shutdown: impl std::future::Future<Output = ()>,
) -> anyhow::Result<()> {
    use anyhow::Context;
    use std::os::unix::fs::PermissionsExt;
    match std::fs::remove_file(path) {
        Ok(()) => {
            tracing::info!(socket = %path.display(), "replaced a socket left by an earlier sandbox")
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e).with_context(|| format!("removing {}", path.display())),
    }
    let listener = tokio::net::UnixListener::bind(path)
        .with_context(|| format!("listening on {}", path.display()))?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o660))
        .with_context(|| format!("opening {} to this user's group", path.display()))?;
    tracing::info!(socket = %path.display(), uid = own_uid()?, "media sandbox listening");
    let permits = std::sync::Arc::new(tokio::sync::Semaphore::new(config.concurrency.max(1)));
    let mut runs = tokio::task::JoinSet::new();
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let (stream, _) = match accepted {
                    Ok(accepted) => accepted,
                    Err(e) => {
                        tracing::warn!(error = %e, "a connection to the media sandbox failed");
                        continue;
                    }
                };
                let (config, permits) = (config.clone(), std::sync::Arc::clone(&permits));
                runs.spawn(async move {
                    let Ok(_permit) = permits.acquire_owned().await else {
                        return;
                    };
                    let (reader, writer) = stream.into_split();
                    if let Err(e) = serve(config, reader, writer).await {
                        tracing::warn!(error = %format!("{e:#}"), "a media run's exchange failed");
                    }
                });
            }
            Some(_) = runs.join_next(), if !runs.is_empty() => {}
            () = &mut shutdown => break,
        }
    }
    drop(listener);
    let _ = std::fs::remove_file(path);
    while runs.join_next().await.is_some() {}
    Ok(())
}
