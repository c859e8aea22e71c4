//! The metadata job: reads the assembled object once, as a stream, and computes
//! its size, MD5, SHA-256 and sniffed type, reporting bytes done as it goes; then
//! the upload is ready.

use anyhow::Context;
use bytes::{Bytes, BytesMut};
use chrono::Utc;
use md5::Digest;
use tokio::sync::{mpsc, watch};
use upload_db::jobs::UploadJob;
use upload_db::models::MetadataRow;
use upload_db::uploads::{self, Transition};
use upload_domain::{Stage, StageStatus, UploadEvent, UploadState};
use upload_storage::StorageKey;

use crate::JobContext;
use crate::outcome::JobError;
use crate::progress::ProgressReporter;

/// Hashers get the stream in blocks of this size; with `BLOCKS_IN_FLIGHT` blocks
/// queued per hasher, a job holds at most a few MiB whatever the file's size.
const BLOCK: usize = 1024 * 1024;
const BLOCKS_IN_FLIGHT: usize = 4;
/// How many leading bytes the type sniffer looks at.
const SNIFF_LEN: usize = 8192;

/// What one read of the file yields.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileFacts {
    /// Bytes read.
    pub size: u64,
    /// Lower-case hex MD5.
    pub md5_hex: String,
    /// Lower-case hex SHA-256.
    pub sha256_hex: String,
    /// The type the first bytes reveal.
    pub sniffed_content_type: String,
}

/// Sniffs a MIME type from a file's first bytes.
pub fn sniff(head: &[u8]) -> String {
    infer::get(head)
        .map(|t| t.mime_type().to_owned())
        .unwrap_or_else(|| "application/octet-stream".to_owned())
}

fn spawn_hasher<D: Digest + Send + 'static>(
    mut rx: mpsc::Receiver<Bytes>,
) -> tokio::task::JoinHandle<String> {
    tokio::task::spawn_blocking(move || {
        let mut digest = D::new();
        while let Some(block) = rx.blocking_recv() {
            digest.update(&block);
        }
        hex::encode(digest.finalize())
    })
}

async fn feed(
    md5: &mpsc::Sender<Bytes>,
    sha: &mpsc::Sender<Bytes>,
    block: Bytes,
) -> anyhow::Result<()> {
    md5.send(block.clone())
        .await
        .context("md5 hasher stopped")?;
    sha.send(block).await.context("sha256 hasher stopped")?;
    Ok(())
}

/// Streams `stream` once through both hashers (each on its own thread, so the two
/// cores share the work) and the sniffer, publishing bytes done on `progress`.
pub async fn read_facts<S, E>(
    mut stream: S,
    progress: &watch::Sender<u64>,
) -> anyhow::Result<FileFacts>
where
    S: futures::Stream<Item = Result<Bytes, E>> + Unpin,
    E: std::error::Error + Send + Sync + 'static,
{
    use futures::StreamExt;
    let (md5_tx, md5_rx) = mpsc::channel::<Bytes>(BLOCKS_IN_FLIGHT);
    let (sha_tx, sha_rx) = mpsc::channel::<Bytes>(BLOCKS_IN_FLIGHT);
    let md5_task = spawn_hasher::<md5::Md5>(md5_rx);
    let sha_task = spawn_hasher::<sha2::Sha256>(sha_rx);
    let mut head = Vec::with_capacity(SNIFF_LEN);
    let mut size = 0u64;
    let mut block = BytesMut::with_capacity(BLOCK);
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.context("reading the object from the store")?;
        if head.len() < SNIFF_LEN {
            let take = (SNIFF_LEN - head.len()).min(chunk.len());
            head.extend_from_slice(&chunk[..take]);
        }
        size += chunk.len() as u64;
        block.extend_from_slice(&chunk);
        if block.len() >= BLOCK {
            feed(&md5_tx, &sha_tx, block.split().freeze()).await?;
            progress.send_replace(size);
        }
    }
    if !block.is_empty() {
        feed(&md5_tx, &sha_tx, block.split().freeze()).await?;
    }
    progress.send_replace(size);
    drop(md5_tx);
    drop(sha_tx);
    Ok(FileFacts {
        size,
        md5_hex: md5_task.await.context("md5 hasher panicked")?,
        sha256_hex: sha_task.await.context("sha256 hasher panicked")?,
        sniffed_content_type: sniff(&head),
    })
}

/// Runs the metadata job for one upload. Safe to run twice: a ready upload is left
/// alone, and a second metadata row for the same upload is ignored.
pub async fn run(ctx: &JobContext, job: UploadJob) -> Result<(), JobError> {
    let id = job.upload_id;
    let row = {
        let mut conn = ctx.pool.get().await.map_err(upload_db::DbError::from)?;
        let Some(row) = uploads::find(&mut conn, id).await? else {
            tracing::warn!(upload = %id, "metadata job for an unknown upload; nothing to do");
            return Ok(());
        };
        match row.state()? {
            UploadState::Uploaded => {
                match uploads::transition(
                    &mut conn,
                    id,
                    UploadState::Uploaded,
                    UploadEvent::ProcessingStarted,
                    None,
                )
                .await?
                {
                    Ok(Transition::Applied(_)) => {}
                    // Someone moved it first; re-read to see where it is.
                    Ok(Transition::Lost) | Err(_) => {
                        let again = uploads::find(&mut conn, id)
                            .await?
                            .map(|r| r.state())
                            .transpose()?;
                        if again != Some(UploadState::Processing) {
                            return Ok(());
                        }
                    }
                }
            }
            // A previous run died midway: do the work again.
            UploadState::Processing => {}
            other => {
                tracing::info!(upload = %id, state = %other, "metadata job has nothing to do in this state");
                return Ok(());
            }
        }
        row
    };
    let declared = u64::try_from(row.declared_size).unwrap_or(0);
    let body = ctx
        .store
        .read(&StorageKey::UploadObject { key: &row.temp_key })
        .await?;
    let stream = Box::pin(futures::stream::unfold(body, |mut body| async move {
        body.next().await.map(|chunk| (chunk, body))
    }));

    let mut progress = ProgressReporter::new(ctx.pool.clone(), id, Stage::Hash, declared);
    let (done_tx, done_rx) = watch::channel(0u64);
    // The read never waits on progress writes: the reporter follows on the side.
    let (facts, ()) = tokio::join!(
        async move { read_facts(stream, &done_tx).await },
        progress.follow(done_rx)
    );
    let facts = facts.map_err(JobError::retry)?;
    if facts.size != declared {
        progress
            .finish(
                StageStatus::Failed,
                facts.size,
                "size differs from the declared size",
            )
            .await;
        return Err(JobError::Abort {
            code: "size_mismatch",
            message: format!(
                "the stored file has {} bytes, but {declared} were declared",
                facts.size
            ),
        });
    }

    let metadata = MetadataRow {
        upload_id: id.as_uuid(),
        size_bytes: row.declared_size,
        md5_hex: facts.md5_hex.clone(),
        sha256_hex: facts.sha256_hex.clone(),
        sniffed_content_type: facts.sniffed_content_type.clone(),
        computed_at: Utc::now(),
    };
    let mut conn = ctx.pool.get().await.map_err(upload_db::DbError::from)?;
    diesel_async::AsyncConnection::transaction::<_, upload_db::DbError, _>(
        &mut *conn,
        async move |conn| {
            uploads::save_metadata(conn, &metadata).await?;
            upload_db::progress::set(
                conn,
                id,
                Stage::Hash,
                StageStatus::Done,
                declared,
                declared,
                "",
            )
            .await?;
            let _ = uploads::transition(
                conn,
                id,
                UploadState::Processing,
                UploadEvent::ProcessingDone,
                None,
            )
            .await?;
            Ok(())
        },
    )
    .await?;
    tracing::info!(upload = %id, md5 = %facts.md5_hex, size = facts.size, "upload ready");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn facts_match_one_shot_hashes_across_uneven_chunks() {
        let data: Vec<u8> = (0..3_000_017u32).map(|i| (i * 7 % 251) as u8).collect();
        let chunks: Vec<Result<Bytes, std::io::Error>> = data
            .chunks(70_001)
            .map(|c| Ok(Bytes::copy_from_slice(c)))
            .collect();
        let (tx, mut rx) = watch::channel(0);
        let facts = read_facts(futures::stream::iter(chunks), &tx)
            .await
            .unwrap();
        assert_eq!(facts.size, data.len() as u64);
        assert_eq!(facts.md5_hex, hex::encode(md5::Md5::digest(&data)));
        assert_eq!(facts.sha256_hex, hex::encode(sha2::Sha256::digest(&data)));
        assert!(rx.has_changed().unwrap());
        assert_eq!(*rx.borrow_and_update(), data.len() as u64);
    }

    #[test]
    fn sniffing_uses_magic_bytes_not_names() {
        assert_eq!(sniff(b"PK\x03\x04rest-of-zip"), "application/zip");
        assert_eq!(sniff(b"\x89PNG\r\n\x1a\n...."), "image/png");
        assert_eq!(sniff(b"plain words"), "application/octet-stream");
    }
}
