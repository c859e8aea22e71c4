//! Re-scans when signatures change. The signature watch asks clamd for its version
//! every `UPLOAD_SIGNATURE_CHECK_SECS` and starts a run when anything stored or
//! ready was scanned with older signatures. The run's job re-scans the regular
//! bucket's objects (each once, however many versions share it), then the ready
//! uploads, one at a time, throttled to `UPLOAD_RESCAN_BYTES_PER_SEC`, and giving
//! way to uploads' first scans. A stored object now flagged is held: it stops being
//! downloadable at once, its owners are told, and it moves to its held key in the
//! regular bucket, where nothing expires, until an operator decides. Held objects
//! are re-scanned too (found clean, operators see it). A finding an operator
//! overrode holds nothing again. Every object's recorded version is the run's
//! bookmark.

use std::time::Duration;

use anyhow::Context;
use bytes::Bytes;
use futures::{Stream, StreamExt};
use tokio::sync::watch;
use upload_db::holds::{self, Rescanned};
use upload_db::jobs::{Queue, RescanJob};
use upload_db::rescan::{self, ObjectScanRow, Target};
use upload_db::uploads::Transition;
use upload_db::versions::ContentLock;
use upload_domain::{Actor, ScannerVersion, StoredRescan};
use upload_storage::StorageKey;

use crate::JobContext;
use crate::job::job;
use crate::outcome::JobError;
use crate::scan::{FileFacts, read_and_scan};

/// How long a re-scan waits, before each object, for uploads' first scans to
/// finish: they go first, but cannot stop a re-scan for good.
const YIELD_AT_MOST: Duration = Duration::from_secs(30);

job!(
    /// The re-scan queue's job: one run, to the end.
    Rescan,
    RescanJob,
    Queue::Rescan,
    run
);

/// Asks clamd for its signature version and starts a re-scan when it is newer
/// than a stored or ready file's verdict. Errors are logged: the next check
/// tries again.
pub async fn check_signatures(ctx: &JobContext) {
    let scanner = match ctx.clamd().version().await {
        Ok(scanner) => scanner,
        Err(e) => {
            tracing::warn!(error = %format!("{e:#}"), "could not ask clamd for its signature version");
            return;
        }
    };
    let started = async {
        let mut conn = ctx.pool.get().await?;
        rescan::start_if_newer(&mut conn, &scanner).await
    };
    match started.await {
        Ok(Some(run)) => tracing::warn!(
            signatures = run.signature_version,
            objects = run.objects_total,
            bytes = run.bytes_total,
            "newer signatures: re-scan of the stored catalogue started"
        ),
        Ok(None) => tracing::debug!(%scanner, "signatures unchanged"),
        Err(e) => tracing::warn!(error = %e, "could not start a re-scan"),
    }
}

/// Checks the signatures now and then every `every`, until the task is aborted.
pub async fn watch_signatures(ctx: std::sync::Arc<JobContext>, every: Duration) {
    loop {
        check_signatures(&ctx).await;
        tokio::time::sleep(every).await;
    }
}

/// Reads `stream` no faster than `bytes_per_sec`, on average from its start.
fn throttled<S, E>(stream: S, bytes_per_sec: u64) -> impl Stream<Item = Result<Bytes, E>>
where
    S: Stream<Item = Result<Bytes, E>>,
{
    let started = tokio::time::Instant::now();
    let mut read = 0u64;
    stream.then(move |chunk| {
        if let Ok(bytes) = &chunk {
            read += bytes.len() as u64;
        }
        let due = started + Duration::from_secs_f64(read as f64 / bytes_per_sec as f64);
        async move {
            tokio::time::sleep_until(due).await;
            chunk
        }
    })
}

/// Reads the object at `key` once, throttled, for clamd and the hashes.
/// `None` when the store no longer holds it.
async fn scan_object(
    ctx: &JobContext,
    key: &StorageKey<'_>,
) -> Result<Option<(FileFacts, upload_domain::ScannerAnswer)>, JobError> {
    let rate = ctx.config.rescan_bytes_per_sec;
    let stream = match ctx.store.read(key).await {
        Ok(stream) => Box::pin(throttled(stream, rate)),
        Err(upload_storage::StoreError::NotFound(_)) => return Ok(None),
        Err(e) => return Err(e.into()),
    };
    let for_hashes = Box::pin(throttled(ctx.store.read(key).await?, rate));
    let (progress, _) = watch::channel(0u64);
    read_and_scan(stream, for_hashes, &ctx.clamd(), &progress, None)
        .await
        .map(Some)
        .map_err(JobError::retry)
}

/// Runs one re-scan run to its end (or until a newer run takes over).
pub async fn run(ctx: &JobContext, job: RescanJob) -> Result<(), JobError> {
    let version = job.signature_version;
    let scanner = ctx.clamd().version().await.map_err(JobError::retry)?;
    if scanner.signatures < version {
        return Err(JobError::retry(anyhow::anyhow!(
            "clamd has signatures {}, the re-scan needs {version} or newer",
            scanner.signatures
        )));
    }
    loop {
        let mut conn = ctx.pool.get().await.map_err(upload_db::DbError::from)?;
        if !rescan::run(&mut conn, version)
            .await?
            .is_some_and(|r| r.is_running())
        {
            return Ok(());
        }
        // Low priority: uploads waiting for their first scan go first (for a while).
        let yield_until = tokio::time::Instant::now() + YIELD_AT_MOST;
        while upload_db::jobs::busy(&mut conn, Queue::Scan).await? > 0
            && tokio::time::Instant::now() < yield_until
        {
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
        let Some(target) = rescan::next_target(&mut conn, version).await? else {
            rescan::finish(&mut conn, version).await?;
            tracing::info!(signatures = version, "re-scan finished");
            return Ok(());
        };
        drop(conn);
        let by = crate::job::actor(Queue::Rescan, &job);
        match target {
            Target::MoveToHold(object) => move_to_hold(ctx, &object).await?,
            Target::MoveToQuarantine(object) => move_to_quarantine(ctx, &object).await?,
            Target::Stored(object) => rescan_object(ctx, version, &scanner, &object, &by).await?,
            Target::Ready(upload) => rescan_ready(ctx, version, &scanner, &upload, &by).await?,
        }
        crate::failpoint::reached("rescan.target-done").await;
    }
}

/// Moves a held object from its MD5 key to its held key (copy, then delete; each
/// step safe to repeat), under the content's lock so no move job places the same
/// content meanwhile, then records it moved.
async fn move_to_hold(ctx: &JobContext, object: &ObjectScanRow) -> Result<(), JobError> {
    let md5 = object.md5;
    let (from, to) = (StorageKey::Content { md5 }, StorageKey::HeldContent { md5 });
    let _lock = ContentLock::acquire(&ctx.config.database.url, md5).await?;
    if ctx.store.object_size(&from).await?.is_some() {
        ctx.store.copy(&from, &to).await?;
        ctx.store.delete(&from).await?;
    } else if ctx.store.object_size(&to).await?.is_none() {
        tracing::error!(%md5, "a held object is in neither its MD5 key nor its held key");
    }
    let mut conn = ctx.pool.get().await.map_err(upload_db::DbError::from)?;
    holds::record_held_moved(&mut conn, md5).await?;
    tracing::warn!(%md5, "flagged stored object moved to its held key for review");
    Ok(())
}

/// Copies an object quarantined before holds existed to quarantine, then removes
/// it from the regular bucket (each step safe to repeat), then records it moved.
async fn move_to_quarantine(ctx: &JobContext, object: &ObjectScanRow) -> Result<(), JobError> {
    let (from, to) = (
        StorageKey::Content { md5: object.md5 },
        StorageKey::QuarantinedContent { md5: object.md5 },
    );
    if ctx.store.object_size(&from).await?.is_some() {
        ctx.store.copy(&from, &to).await?;
        ctx.store.delete(&from).await?;
    }
    let mut conn = ctx.pool.get().await.map_err(upload_db::DbError::from)?;
    rescan::record_moved(&mut conn, object.md5).await?;
    tracing::warn!(md5 = %object.md5, "infected stored object moved to quarantine");
    Ok(())
}

async fn rescan_object(
    ctx: &JobContext,
    version: i64,
    scanner: &ScannerVersion,
    object: &ObjectScanRow,
    by: &Actor,
) -> Result<(), JobError> {
    let md5 = object.md5;
    let key = if object.is_at_held_key() {
        StorageKey::HeldContent { md5 }
    } else {
        StorageKey::Content { md5 }
    };
    let scanned = |finding| Rescanned {
        run_version: version,
        scanner,
        finding,
        by,
        held_key: StorageKey::HeldContent { md5 }.key(),
    };
    let Some((facts, answer)) = scan_object(ctx, &key).await? else {
        // Nothing to read: said loudly, and the run goes on with what it knew.
        tracing::error!(%md5, key = %key.key(), "a stored object is missing from the regular bucket; not re-scanned");
        let mut conn = ctx.pool.get().await.map_err(upload_db::DbError::from)?;
        holds::record_rescan(
            &mut conn,
            object,
            scanned(object.signature.clone()),
            upload_domain::rescan_unread(object.standing, object.verdict),
            false,
        )
        .await?;
        return Ok(());
    };
    if facts.hash.md5 != md5 {
        tracing::error!(%md5, read = %facts.hash.md5, "a stored object's bytes no longer match its MD5");
    }
    let classified = facts.classify(&answer, ctx.config.allow_encrypted_archives);
    let outcome = upload_domain::rescan_stored(
        object.standing,
        object.verdict,
        object.released_signature.as_deref(),
        &classified,
    );
    match &outcome {
        StoredRescan::Stays { verdict } if *verdict == upload_domain::ScanVerdict::Unscannable => {
            tracing::warn!(%md5, finding = ?classified.finding, "a stored object is unscannable under the new signatures; left downloadable")
        }
        StoredRescan::CleanWhileHeld => {
            tracing::warn!(%md5, "a held object scans clean under newer signatures; listed for operators")
        }
        _ => {}
    }
    let mut conn = ctx.pool.get().await.map_err(upload_db::DbError::from)?;
    let told = holds::record_rescan(
        &mut conn,
        object,
        scanned(classified.finding.clone()),
        outcome.clone(),
        ctx.delivers_webhooks(),
    )
    .await?;
    if let StoredRescan::Hold { signature } = outcome {
        tracing::warn!(%md5, %signature, versions = told, "stored object flagged by newer signatures: held for review");
    }
    Ok(())
}

async fn rescan_ready(
    ctx: &JobContext,
    version: i64,
    scanner: &ScannerVersion,
    upload: &upload_db::models::UploadRow,
    by: &Actor,
) -> Result<(), JobError> {
    let temp = StorageKey::Temp {
        owner: &upload.owner_id,
        upload: upload.id,
    };
    let Some((facts, answer)) = scan_object(ctx, &temp).await? else {
        tracing::error!(upload = %upload.id, "a ready upload's file is missing from the temp bucket; not re-scanned");
        let mut conn = ctx.pool.get().await.map_err(upload_db::DbError::from)?;
        rescan::record_ready(&mut conn, version, upload, scanner, None, false, by).await?;
        return Ok(());
    };
    let classified = facts.classify(&answer, ctx.config.allow_encrypted_archives);
    let released = {
        let mut conn = ctx.pool.get().await.map_err(upload_db::DbError::from)?;
        upload_db::results::scan(&mut conn, upload.id)
            .await?
            .and_then(|s| s.released_signature)
    };
    let infected = upload_domain::rescan_quarantines_ready(released.as_deref(), &classified);
    let quarantine = StorageKey::Quarantine {
        owner: &upload.owner_id,
        upload: upload.id,
    };
    let signature = classified.finding.unwrap_or_default();
    if infected {
        // Copied before it is recorded: a crash leaves it ready and re-scanned.
        ctx.store.copy(&temp, &quarantine).await?;
    }
    let mut conn = ctx.pool.get().await.map_err(upload_db::DbError::from)?;
    let recorded = rescan::record_ready(
        &mut conn,
        version,
        upload,
        scanner,
        infected.then(|| (signature.as_str(), quarantine.key())),
        ctx.delivers_webhooks(),
        by,
    )
    .await
    .context("recording a ready upload's re-scan")
    .map_err(JobError::retry)?;
    drop(conn);
    if infected && recorded == Transition::Applied(upload_domain::UploadState::Quarantined) {
        ctx.store.delete(&temp).await?;
        tracing::warn!(upload = %upload.id, %signature, "ready upload found infected by newer signatures");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn a_throttled_read_takes_as_long_as_its_rate_says() {
        let chunks = (0..8).map(|_| Ok::<_, std::io::Error>(Bytes::from(vec![0u8; 256 * 1024])));
        let started = tokio::time::Instant::now();
        let read: Vec<_> = throttled(futures::stream::iter(chunks), 1024 * 1024)
            .collect()
            .await;
        assert_eq!(read.len(), 8);
        // 2 MiB at 1 MiB/s: two seconds, on the paused clock.
        assert_eq!(started.elapsed(), Duration::from_secs(2));
    }
}
