//! Downloading a stored version to a file, streamed and checked.

use std::path::Path;

use futures::StreamExt;
use md5::Digest;
use tokio::io::AsyncWriteExt;

use crate::ClientError;

/// Streams `url` into `output` (through a temporary file beside it, renamed when the
/// MD5 matches `md5_hex`), calling `progress(bytes so far)`. Returns the byte count.
pub async fn download(
    http: &reqwest::Client,
    url: &str,
    output: &Path,
    md5_hex: &str,
    progress: impl Fn(u64),
) -> Result<u64, ClientError> {
    let res = http
        .get(url)
        .send()
        .await
        .map_err(|e| ClientError::Upload(format!("cannot download from the store: {e}")))?;
    if !res.status().is_success() {
        return Err(ClientError::Upload(format!(
            "the store refused the download ({})",
            res.status()
        )));
    }
    let dir = output.parent().filter(|p| !p.as_os_str().is_empty());
    let partial = output.with_extension(format!(
        "{}part",
        output
            .extension()
            .map(|e| format!("{}.", e.to_string_lossy()))
            .unwrap_or_default()
    ));
    if let Some(dir) = dir {
        tokio::fs::create_dir_all(dir).await?;
    }
    let mut file = tokio::fs::File::create(&partial).await?;
    let mut hasher = md5::Md5::new();
    let mut done = 0u64;
    let mut body = res.bytes_stream();
    while let Some(chunk) = body.next().await {
        let chunk = chunk.map_err(|e| {
            ClientError::Upload(format!("the download broke off after {done} bytes: {e}"))
        })?;
        hasher.update(&chunk);
        file.write_all(&chunk).await?;
        done += chunk.len() as u64;
        progress(done);
    }
    file.sync_all().await?;
    drop(file);
    let got = hex::encode(hasher.finalize());
    if !md5_hex.is_empty() && got != md5_hex {
        tokio::fs::remove_file(&partial).await?;
        return Err(ClientError::Upload(format!(
            "the downloaded bytes have MD5 {got}, not {md5_hex}; nothing was written"
        )));
    }
    tokio::fs::rename(&partial, output).await?;
    Ok(done)
}
