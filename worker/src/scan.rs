//! The scan job, first in the pipeline: two streaming reads of the assembled
//! object at once, one feeding clamd (INSTREAM, 1 MiB chunks), the other the MD5
//! and SHA-256 hashers, the type sniffer and the archive walk (a zip's unpacked
//! size across nesting, which clamd's cache of clean files cannot see). Infected files go to quarantine; files the scanner could not
//! inspect are rejected; clean ones are checked against the type policy and handed
//! to the metadata and preview jobs. Every verdict records the engine and
//! signature version clamd had when the scan began.

use anyhow::Context;
use bytes::{Bytes, BytesMut};
use chrono::Utc;
use md5::Digest;
use tokio::sync::{mpsc, watch};
use upload_db::jobs::{Queue, UploadJob};
use upload_db::models::{MetadataRow, NewNotification, ScanRow, UploadRow};
use upload_db::pipeline::{self, ScanOutcome};
use upload_db::uploads::{self, Transition};
use upload_domain::{
    ContentHash, Failure, FailureCode, FileEvidence, Md5Digest, NotificationKind, ScanVerdict,
    ScannerAnswer, Sha256Digest, Stage, StageStatus, UploadEvent, UploadState,
};
use upload_storage::StorageKey;

use crate::JobContext;
use crate::clamd::Clamd;
use crate::job::job;
use crate::outcome::JobError;
use crate::progress::ProgressReporter;

job!(
    /// The scan queue's job.
    Scan,
    UploadJob,
    Queue::Scan,
    run
);

/// Consumers get the stream in blocks of this size (also clamd's INSTREAM chunk).
/// Blocks are shared, not copied: with `BLOCKS_IN_FLIGHT` queued per consumer, a
/// job holds at most about 50 MiB whatever the file's size. A deeper queue lets
/// the hashers and clamd's socket drift apart without stalling the read (16
/// measured 5.2 s for the 1 GiB read where 4 took 5.7 s).
pub const BLOCK: usize = 1024 * 1024;
const BLOCKS_IN_FLIGHT: usize = 16;
/// How many leading bytes the type sniffer looks at.
const SNIFF_LEN: usize = 8192;

/// What one read of the file yields besides the verdict.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileFacts {
    /// Bytes read.
    pub size: u64,
    /// MD5 and SHA-256 of the bytes.
    pub hash: ContentHash,
    /// The type the first bytes reveal.
    pub sniffed_content_type: String,
    /// The MD5 of each part's bytes, in order, when the parts' lengths were given
    /// (the store's ETags are not MD5s); empty otherwise.
    pub part_md5s: Vec<Md5Digest>,
    /// The limit a zip crossed, its nested zips' sizes added up
    /// ([`crate::archive_walk`]): what clamd's cache of clean files lets a bomb of
    /// copies pass.
    pub archive_crossed: Option<upload_domain::Uninspected>,
}

impl FileFacts {
    /// What clamd's `answer` on these bytes means, the archive walk's limits
    /// counted too: how every scan and re-scan reads its verdict.
    pub fn classify(
        &self,
        answer: &ScannerAnswer,
        allow_encrypted_archives: bool,
    ) -> upload_domain::Classified {
        upload_domain::classify(answer, allow_encrypted_archives).bounded_by(self.archive_crossed)
    }
}

/// Sniffs a MIME type from a file's first bytes.
pub fn sniff(head: &[u8]) -> String {
    infer::get(head)
        .map(|t| t.mime_type().to_owned())
        .unwrap_or_else(|| upload_domain::UNKNOWN_TYPE.to_owned())
}

/// Whether [`sniff`] recognises files of `content_type` by their bytes: a file
/// declared so whose bytes it does not recognise is not one.
pub fn sniffer_knows(content_type: &str) -> bool {
    content_type != upload_domain::UNKNOWN_TYPE && infer::is_mime_supported(content_type)
}

fn spawn_hasher<D: Digest + Send + 'static>(
    mut rx: mpsc::Receiver<Bytes>,
) -> tokio::task::JoinHandle<Vec<u8>> {
    tokio::task::spawn_blocking(move || {
        let mut digest = D::new();
        while let Some(block) = rx.blocking_recv() {
            digest.update(&block);
        }
        digest.finalize().to_vec()
    })
}

/// Sends one block to every consumer; fails when one has stopped.
async fn feed(
    sinks: &[(&'static str, mpsc::Sender<Bytes>)],
    block: Bytes,
) -> Result<(), &'static str> {
    for (name, sink) in sinks {
        sink.send(block.clone()).await.map_err(|_| *name)?;
    }
    Ok(())
}

/// Reads `stream` to its end in [`BLOCK`]s, giving each to every sink within
/// `timeout`; keeps the first bytes for the sniffer and publishes bytes read on
/// `progress`, when given. Returns the head and the size.
async fn pump<S, E>(
    mut stream: S,
    sinks: Vec<(&'static str, mpsc::Sender<Bytes>)>,
    timeout: std::time::Duration,
    progress: Option<&watch::Sender<u64>>,
) -> anyhow::Result<(Vec<u8>, u64)>
where
    S: futures::Stream<Item = Result<Bytes, E>> + Unpin,
    E: std::error::Error + Send + Sync + 'static,
{
    use futures::StreamExt;
    let give = async |block: Bytes| match tokio::time::timeout(timeout, feed(&sinks, block)).await {
        Ok(fed) => fed.map_err(|who| anyhow::anyhow!("{who} stopped reading")),
        Err(_) => Err(anyhow::anyhow!(
            "{} took no data for {timeout:?}",
            sinks.first().map_or("a consumer", |s| s.0)
        )),
    };
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
        while block.len() >= BLOCK {
            give(block.split_to(BLOCK).freeze()).await?;
            if let Some(progress) = progress {
                progress.send_replace(size);
            }
        }
    }
    if !block.is_empty() {
        give(block.split().freeze()).await?;
    }
    if let Some(progress) = progress {
        progress.send_replace(size);
    }
    Ok((head, size))
}

/// Reads the file twice at once, each read streamed and bounded: `for_clamd` goes
/// to `clamd` as fast as clamd takes it (publishing bytes sent on
/// `progress`), `for_hashes` to both hashers (each on its own thread) and the
/// sniffer. clamd scans what it received only once the stream ends, so the hashes
/// are made while it scans instead of holding its stream back: on two cores the
/// verdict comes about as soon as a plain INSTREAM's would. Both reads must see
/// the same number of bytes. clamd must take every block, and answer once it has
/// them all, within its time-out; a scanner that hangs fails the read, never
/// passes it.
pub async fn read_and_scan<S, T, E>(
    for_clamd: S,
    for_hashes: T,
    clamd: &Clamd,
    progress: &watch::Sender<u64>,
    part_lengths: Option<Vec<u64>>,
) -> anyhow::Result<(FileFacts, ScannerAnswer)>
where
    S: futures::Stream<Item = Result<Bytes, E>> + Unpin,
    T: futures::Stream<Item = Result<Bytes, E>> + Unpin,
    E: std::error::Error + Send + Sync + 'static,
{
    let (md5_tx, md5_rx) = mpsc::channel::<Bytes>(BLOCKS_IN_FLIGHT);
    let (sha_tx, sha_rx) = mpsc::channel::<Bytes>(BLOCKS_IN_FLIGHT);
    let (scan_tx, scan_rx) = mpsc::channel::<Bytes>(BLOCKS_IN_FLIGHT);
    let md5_task = spawn_hasher::<md5::Md5>(md5_rx);
    let sha_task = spawn_hasher::<sha2::Sha256>(sha_rx);
    let (walk_tx, walk_rx) = mpsc::channel::<Bytes>(BLOCKS_IN_FLIGHT);
    let walk_task = crate::archive_walk::spawn(walk_rx, crate::archive_walk::WalkLimits::SCANNER);
    let mut hash_sinks = vec![
        ("md5", md5_tx),
        ("sha256", sha_tx),
        ("archive walk", walk_tx),
    ];
    let parts_task = part_lengths.map(|lengths| {
        let (parts_tx, parts_rx) = mpsc::channel::<Bytes>(BLOCKS_IN_FLIGHT);
        hash_sinks.push(("part md5s", parts_tx));
        crate::part_hashes::spawn(parts_rx, lengths)
    });
    let clamd_timeout = clamd.timeout;
    let started = std::time::Instant::now();
    let mut scan_task = tokio::spawn({
        let clamd = clamd.clone();
        async move { clamd.scan(scan_rx).await }
    });
    let to_clamd = async {
        let sent = pump(
            for_clamd,
            vec![("clamd", scan_tx)],
            clamd_timeout,
            Some(progress),
        )
        .await;
        (sent, started.elapsed())
    };
    let to_hashes = pump(for_hashes, hash_sinks, clamd_timeout, None);
    // The hashes are awaited beside the verdict: clamd scans while they finish.
    let verdict = async {
        let (sent, send_time) = to_clamd.await;
        // clamd's own error (unreachable, refused) explains a stopped read best. A
        // read that failed on the store's side ends clamd's stream early, so its
        // verdict on part of the file is dropped. After a failed read clamd is
        // given a moment, not the whole time-out, to say what went wrong.
        let wait = if sent.is_ok() {
            clamd_timeout
        } else {
            std::time::Duration::from_secs(1)
        };
        let verdict = match tokio::time::timeout(wait, &mut scan_task).await {
            Ok(joined) => joined.context("the scan task panicked")?,
            Err(_) if sent.is_err() => {
                // Silent after a failed read: the read's own error says what happened.
                scan_task.abort();
                clamd.scan_unanswered(started);
                sent?;
                anyhow::bail!("the read failed")
            }
            Err(_) => {
                scan_task.abort();
                clamd.scan_unanswered(started);
                anyhow::bail!("clamd gave no verdict within {wait:?}")
            }
        }?;
        let (_, sent) = sent?;
        anyhow::Ok((verdict, sent, send_time))
    };
    let (verdict, hashed) = tokio::join!(verdict, to_hashes);
    let (verdict, sent, send_time) = verdict?;
    let (head, size) = hashed?;
    anyhow::ensure!(
        sent == size,
        "the two reads of the object differ: {sent} bytes went to clamd, {size} were hashed"
    );
    tracing::info!(
        bytes = size,
        send_ms = send_time.as_millis() as u64,
        verdict_ms = started.elapsed().as_millis() as u64,
        "file read for clamd and, beside it, for the hashes"
    );
    let md5 = md5_task.await.context("md5 hasher panicked")?;
    let sha256 = sha_task.await.context("sha256 hasher panicked")?;
    let sha256 = <[u8; 32]>::try_from(sha256.as_slice()).context("SHA-256 is 32 bytes")?;
    let part_md5s = match parts_task {
        Some(task) => task.await.context("the part hasher panicked")?,
        None => Vec::new(),
    };
    let archive_crossed = walk_task.await.context("the archive walk panicked")?;
    Ok((
        FileFacts {
            size,
            hash: ContentHash {
                md5: Md5Digest::from_bytes(&md5)?,
                sha256: Sha256Digest::from_array(sha256),
            },
            sniffed_content_type: sniff(&head),
            part_md5s,
            archive_crossed,
        },
        verdict,
    ))
}

/// Moves the upload from `uploaded` to `scanning`, or finds it already there.
/// `None` means there is nothing to scan.
async fn claim(ctx: &JobContext, job: UploadJob) -> Result<Option<UploadRow>, JobError> {
    let id = job.upload_id;
    let mut conn = ctx.pool.get().await.map_err(upload_db::DbError::from)?;
    let Some(row) = uploads::find(&mut conn, id).await? else {
        tracing::warn!(upload = %id, "scan job for an unknown upload; nothing to do");
        return Ok(None);
    };
    match row.state {
        UploadState::Uploaded => {
            match uploads::transition(
                &mut conn,
                id,
                UploadState::Uploaded,
                UploadEvent::ScanStarted,
                None,
                &crate::job::actor(Queue::Scan, &job),
            )
            .await?
            {
                Ok(Transition::Applied(_)) => Ok(Some(row)),
                // Someone moved it first: scan only if it is now scanning.
                _ => Ok(uploads::find(&mut conn, id)
                    .await?
                    .filter(|r| r.state == UploadState::Scanning)),
            }
        }
        // A previous run died midway: scan again.
        UploadState::Scanning => Ok(Some(row)),
        UploadState::Quarantined => {
            // A previous run recorded the verdict but may have died before the
            // temp object was removed.
            drop(conn);
            ctx.store
                .delete(&StorageKey::Temp {
                    owner: &row.owner_id,
                    upload: id,
                })
                .await?;
            Ok(None)
        }
        other => {
            tracing::info!(upload = %id, state = %other, "scan job has nothing to do in this state");
            Ok(None)
        }
    }
}

/// Runs the scan job for one upload. Safe to run twice: the verdict is recorded by
/// a guarded transition out of `scanning`, and every write after it is idempotent.
pub async fn run(ctx: &JobContext, job: UploadJob) -> Result<(), JobError> {
    let id = job.upload_id;
    let by = crate::job::actor(Queue::Scan, &job);
    let Some(row) = claim(ctx, job).await? else {
        return Ok(());
    };
    let declared = row.declared_bytes();
    let object = StorageKey::Temp {
        owner: &row.owner_id,
        upload: id,
    };
    // Asked before the scan: a database reloaded meanwhile makes the recorded
    // version older than the one used, which only ever causes one re-scan more.
    let clamd = ctx.clamd();
    let scanner = clamd.version().await.map_err(JobError::retry)?;
    let signed = crate::part_hashes::signed_parts(ctx, &row).await?;
    let stream = ctx.store.read(&object).await?;
    let for_hashes = ctx.store.read(&object).await?;
    // A crash test's point a third of the way through the read.
    let read_so_far = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
    let stream = Box::pin(futures::StreamExt::then(stream, move |chunk| {
        let read_so_far = std::sync::Arc::clone(&read_so_far);
        async move {
            if let Ok(bytes) = &chunk {
                let before =
                    read_so_far.fetch_add(bytes.len() as u64, std::sync::atomic::Ordering::Relaxed);
                if before < declared / 3 && before + bytes.len() as u64 >= declared / 3 {
                    crate::failpoint::reached("scan.mid-read").await;
                }
            }
            chunk
        }
    }));

    let mut progress =
        ProgressReporter::new(ctx.pool.clone(), id, &[Stage::Scan, Stage::Hash], declared);
    let (done_tx, done_rx) = watch::channel(0u64);
    // The read never waits on progress writes: the reporter follows on the side.
    let reading = std::time::Instant::now();
    let lengths = signed
        .as_ref()
        .map(|parts| parts.iter().map(|p| p.1).collect());
    let (read, ()) = tokio::join!(
        async move { read_and_scan(stream, for_hashes, &clamd, &done_tx, lengths).await },
        progress.follow(done_rx)
    );
    let (facts, answer) = read.map_err(JobError::retry)?;
    crate::failpoint::reached("scan.verdict").await;
    if facts.size != declared {
        progress
            .finish(
                StageStatus::Failed,
                facts.size,
                "size differs from the declared size",
            )
            .await;
        return Err(JobError::abort(
            FailureCode::SizeMismatch,
            format!(
                "the stored file has {} bytes, but {declared} were declared",
                facts.size
            ),
        ));
    }
    if let Some(swapped) = signed
        .as_deref()
        .and_then(|s| crate::part_hashes::first_swapped(s, &facts.part_md5s))
    {
        progress
            .finish(
                StageStatus::Failed,
                facts.size,
                "a part differs from the one signed",
            )
            .await;
        return Err(JobError::abort(FailureCode::PartMismatch, swapped));
    }
    let classified = facts.classify(&answer, ctx.config.allow_encrypted_archives);
    ctx.metrics
        .scanned(classified.verdict, facts.size, reading.elapsed());
    let size = i64::try_from(facts.size).unwrap_or(i64::MAX);
    // What the file is, by its declaration, its bytes and its name together.
    let judged = ctx.config.policy.allowed_types.judge(
        &FileEvidence {
            file_name: &row.file_name,
            declared: &row.declared_content_type,
            sniffed: &facts.sniffed_content_type,
            declared_has_signature: sniffer_knows(&row.declared_content_type),
        },
        ctx.config.policy.allow_software,
    );
    let metadata = MetadataRow {
        upload_id: row.id,
        size_bytes: size,
        md5: facts.hash.md5,
        sha256: facts.hash.sha256,
        sniffed_content_type: facts.sniffed_content_type.clone(),
        computed_at: Utc::now(),
        software: judged.as_ref().is_ok_and(|j| j.software),
    };
    let mut scan = ScanRow {
        upload_id: row.id,
        verdict: classified.verdict,
        signature: classified.finding.clone(),
        bytes_scanned: size,
        quarantine_key: None,
        scanned_at: Utc::now(),
        uninspected: classified.uninspected,
        engine_version: Some(scanner.engine.clone()),
        signature_version: Some(scanner.signatures),
        released_by: None,
        release_reason: None,
        released_signature: None,
    };
    let deliver = ctx.delivers_webhooks();
    let finding = classified.finding.clone().unwrap_or_default();

    let outcome = match classified.verdict {
        ScanVerdict::Infected => {
            let quarantine = StorageKey::Quarantine {
                owner: &row.owner_id,
                upload: id,
            };
            // Copy first, record second, delete last: a crash anywhere leaves the
            // file in temp (re-scanned) or already recorded (cleanup on re-run).
            ctx.store.copy(&object, &quarantine).await?;
            scan.quarantine_key = Some(quarantine.key());
            let message = format!(
                "{} contains malware ({finding}); it was quarantined and will be deleted in {} days",
                row.file_name,
                upload_domain::QUARANTINE_DAYS
            );
            ScanOutcome::Infected {
                notification: NewNotification::about_upload(
                    &row,
                    NotificationKind::UploadQuarantined,
                    message,
                    serde_json::json!({ "signature": finding, "file_name": row.file_name }),
                ),
            }
        }
        // Not infected: a type off the list is said first (the most useful reason),
        // then a file the scanner could not inspect, else it is clean.
        verdict => match judged {
            Err(rejection) => {
                let reason = rejection.to_string();
                ScanOutcome::Rejected {
                    notification: NewNotification::about_upload(
                        &row,
                        NotificationKind::UploadRejected,
                        format!("{} was not accepted: {reason}", row.file_name),
                        serde_json::json!({
                            "code": rejection.code().as_str(),
                            "declared_content_type": row.declared_content_type,
                            "sniffed_content_type": facts.sniffed_content_type,
                        }),
                    ),
                    failure: Failure::new(rejection.code(), reason),
                    event: UploadEvent::Rejected,
                }
            }
            Ok(_) if verdict == ScanVerdict::Unscannable => {
                let reason = classified
                    .uninspected
                    .unwrap_or(upload_domain::Uninspected::TooLarge);
                let failure = Failure::new(FailureCode::Unscannable, reason.sentence());
                ScanOutcome::Rejected {
                    notification: NewNotification::about_upload(
                        &row,
                        NotificationKind::UploadRejected,
                        format!("{} was not accepted: {}", row.file_name, reason.sentence()),
                        serde_json::json!({
                            "code": FailureCode::Unscannable.as_str(),
                            "reason": reason.as_str(),
                            "finding": finding,
                            "file_name": row.file_name,
                        }),
                    ),
                    failure,
                    event: UploadEvent::Scanned(ScanVerdict::Unscannable),
                }
            }
            Ok(_) => ScanOutcome::Clean,
        },
    };
    let infected = matches!(outcome, ScanOutcome::Infected { .. });
    let mut conn = ctx.pool.get().await.map_err(upload_db::DbError::from)?;
    let recorded = pipeline::record_scan(&mut conn, scan, metadata, outcome, deliver, &by).await?;
    drop(conn);
    if infected {
        // Recorded (now or by an earlier run): the temp copy must go.
        ctx.store.delete(&object).await?;
    }
    tracing::info!(
        upload = %id,
        verdict = %classified.verdict,
        finding,
        uninspected = ?classified.uninspected,
        md5 = %facts.hash.md5,
        sniffed = %facts.sniffed_content_type,
        scanner = %scanner,
        ?recorded,
        "scanned"
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sniffing_uses_magic_bytes_not_names() {
        assert_eq!(sniff(b"PK\x03\x04rest-of-zip"), "application/zip");
        assert_eq!(sniff(b"\x89PNG\r\n\x1a\n...."), "image/png");
        assert_eq!(sniff(b"plain words"), "application/octet-stream");
    }

    #[test]
    fn the_sniffer_knows_pdfs_and_pngs_by_their_bytes_and_text_by_nothing() {
        assert!(sniffer_knows("application/pdf"));
        assert!(sniffer_knows("image/png"));
        assert!(!sniffer_knows("text/plain"));
        assert!(!sniffer_knows(upload_domain::UNKNOWN_TYPE));
        assert_eq!(
            sniff(b"MZ\x90\x00rest"),
            "application/vnd.microsoft.portable-executable"
        );
        assert_eq!(sniff(b"#!/bin/sh\nrm -rf ~\n"), "text/x-shellscript");
    }
}
