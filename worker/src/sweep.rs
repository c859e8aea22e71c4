//! The sweeper: finds uploads stuck in a state past its deadline and finishes or
//! expires them, so a crash between any two steps never leaves an upload hanging.
//!
//! - `created`/`uploading` past `expires_at`: if the store already holds the
//!   assembled object (a completion that died before its database write), the
//!   upload is completed and processed; otherwise it expires and its multipart
//!   upload is aborted.
//! - `uploaded`/`processing` with no live job for longer than `stuck_after`: the
//!   next attempt is enqueued, or the upload fails once attempts are spent.
//! - item submissions `queued`/`persisted` with no live persist or move job for
//!   longer than `stuck_after`: the same, for the submission.
//! - held content an operator decided on whose held copy is still there: the copy
//!   is deleted.
//!
//! Several workers may sweep at once: every write is a guarded transition or an
//! idempotent enqueue, so they cannot both win.

use std::time::Duration;

use upload_assembly::{Completion, complete_if_assembled};
use upload_db::jobs::{self, Queue, SubmissionJob, UploadJob};
use upload_db::models::UploadRow;
use upload_db::uploads::{Transition, transition};
use upload_domain::{Actor, Failure, FailureCode, UploadEvent, UploadState};
use upload_storage::{MultipartUpload, StorageKey};

use crate::JobContext;

/// What one sweep did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct SweepReport {
    /// Unfinished uploads expired.
    pub expired: usize,
    /// Uploads found assembled in the store and completed.
    pub recovered: usize,
    /// Stuck uploads whose job was enqueued again.
    pub requeued: usize,
    /// Stuck uploads failed after their attempts were spent.
    pub failed: usize,
    /// Stuck submissions whose job was enqueued again.
    pub requeued_submissions: usize,
    /// Stuck submissions failed after their attempts were spent.
    pub failed_submissions: usize,
    /// Ready uploads never submitted, expired before their bytes expire.
    pub expired_ready: usize,
    /// Held copies left by a release or a confirmation that died before
    /// deleting them, deleted.
    pub held_copies_cleared: usize,
}

const BATCH: i64 = 100;

/// Runs one sweep.
pub async fn sweep_once(ctx: &JobContext, stuck_after: Duration) -> anyhow::Result<SweepReport> {
    let mut report = SweepReport::default();
    let mut conn = ctx.pool.get().await?;
    let overdue = upload_db::sweep::overdue(&mut conn, BATCH).await?;
    drop(conn);
    for row in overdue {
        match settle_overdue(ctx, &row).await {
            Ok(Overdue::Recovered) => report.recovered += 1,
            Ok(Overdue::Expired) => report.expired += 1,
            Ok(Overdue::MovedOn) => {}
            Err(e) => {
                tracing::warn!(upload = %row.id, error = %e, "sweeper could not settle an overdue upload")
            }
        }
    }

    let mut conn = ctx.pool.get().await?;
    for queue in [Queue::Scan, Queue::Metadata, Queue::Preview] {
        let stuck = upload_db::sweep::stalled(&mut conn, queue, stuck_after, BATCH).await?;
        for s in stuck {
            let id = s.id;
            if s.attempts < ctx.config.max_attempts {
                let job = UploadJob {
                    upload_id: id,
                    attempt: s.attempts + 1,
                };
                if jobs::enqueue(&mut conn, queue, &job, None).await? {
                    tracing::warn!(upload = %id, queue = queue.name(), attempt = job.attempt, "stuck upload re-enqueued");
                    report.requeued += 1;
                }
            } else {
                drop(conn);
                crate::outcome::fail_upload(
                    ctx,
                    id,
                    Failure::of(FailureCode::ProcessingStalled),
                    &Actor::Sweeper,
                )
                .await?;
                report.failed += 1;
                conn = ctx.pool.get().await?;
            }
        }
    }
    drop(conn);
    sweep_submissions(ctx, stuck_after, &mut report).await?;
    report.expired_ready = expire_unsubmitted(ctx).await?;
    report.held_copies_cleared = clear_decided_holds(ctx).await?;
    Ok(report)
}

/// Deletes the held copies of content an operator decided on (released: back at
/// its MD5 key; confirmed: in quarantine) that the decision left behind, each
/// under the content's lock, so no new hold's copy is taken for a leftover.
async fn clear_decided_holds(ctx: &JobContext) -> anyhow::Result<usize> {
    let mut conn = ctx.pool.get().await?;
    let leftovers = upload_db::holds::decided_with_held_copy(&mut conn, BATCH).await?;
    drop(conn);
    let mut cleared = 0;
    for object in leftovers {
        let md5 = object.md5;
        let _lock =
            upload_db::versions::ContentLock::acquire(&ctx.config.database.url, md5).await?;
        let mut conn = ctx.pool.get().await?;
        let still = upload_db::holds::find(&mut conn, md5).await?;
        let Some(object) = still.filter(|o| o.has_held_leftover()) else {
            continue;
        };
        ctx.store.delete(&StorageKey::HeldContent { md5 }).await?;
        if object.standing == upload_domain::ObjectStanding::Quarantined {
            // A release cut short before a confirm may have left a copy where
            // downloads read, and nothing expires there.
            ctx.store.delete(&StorageKey::Content { md5 }).await?;
        }
        upload_db::holds::record_held_copy_gone(&mut conn, md5).await?;
        tracing::info!(%md5, "a decided hold's leftover copy deleted");
        cleared += 1;
    }
    Ok(cleared)
}

/// Expires ready uploads not submitted within the ready TTL, and removes their
/// temp object and previews: the temp bucket's lifecycle would take the bytes a few
/// days later anyway, and a submission must never find them gone.
async fn expire_unsubmitted(ctx: &JobContext) -> anyhow::Result<usize> {
    let mut conn = ctx.pool.get().await?;
    let overdue = upload_db::sweep::ready_overdue(&mut conn, ctx.config.ready_ttl, BATCH).await?;
    let failure = Failure::of(FailureCode::Expired);
    let mut expired = 0;
    for row in overdue {
        let moved = transition(
            &mut conn,
            row.id,
            UploadState::Ready,
            UploadEvent::Expired,
            Some(&failure),
            &Actor::Sweeper,
        )
        .await?;
        if !matches!(moved, Ok(Transition::Applied(_))) {
            continue;
        }
        expired += 1;
        let previews = upload_db::results::previews(&mut conn, row.id).await?;
        let temp = StorageKey::Temp {
            owner: &row.owner_id,
            upload: row.id,
        };
        // Best effort: the lifecycle rule removes what a failed delete leaves.
        if let Err(e) = ctx.store.delete(&temp).await {
            tracing::warn!(upload = %row.id, error = %e, "could not delete an expired upload's object");
        }
        for p in previews {
            let key = StorageKey::Preview {
                upload: row.id,
                name: &p.name,
            };
            if let Err(e) = ctx.store.delete(&key).await {
                tracing::warn!(upload = %row.id, error = %e, "could not delete an expired upload's preview");
            }
        }
    }
    Ok(expired)
}

/// Re-enqueues (or, attempts spent, fails) submissions whose job is gone.
async fn sweep_submissions(
    ctx: &JobContext,
    stuck_after: Duration,
    report: &mut SweepReport,
) -> anyhow::Result<()> {
    let mut conn = ctx.pool.get().await?;
    let stuck = upload_db::sweep::stalled_submissions(&mut conn, stuck_after, BATCH).await?;
    drop(conn);
    for s in stuck {
        if s.attempts < ctx.config.max_attempts {
            let next = SubmissionJob {
                submission_id: s.id,
                attempt: s.attempts + 1,
            };
            let mut conn = ctx.pool.get().await?;
            if jobs::enqueue(&mut conn, s.queue, &next, None).await? {
                tracing::warn!(submission = %s.id, queue = s.queue.name(), attempt = next.attempt, "stuck submission re-enqueued");
                report.requeued_submissions += 1;
            }
        } else {
            crate::outcome::fail_submission(
                ctx,
                s.id,
                Failure::of(FailureCode::SubmissionStalled),
                &Actor::Sweeper,
            )
            .await?;
            report.failed_submissions += 1;
        }
    }
    Ok(())
}

/// What became of an overdue upload.
enum Overdue {
    /// The store had assembled it: completed and queued for processing.
    Recovered,
    /// Expired, its parts freed.
    Expired,
    /// Another actor moved it first; nothing done.
    MovedOn,
}

/// Completes or expires one overdue upload.
async fn settle_overdue(ctx: &JobContext, row: &UploadRow) -> anyhow::Result<Overdue> {
    if row.state == UploadState::Uploading {
        match complete_if_assembled(&ctx.pool, &ctx.store, row, &Actor::Sweeper).await? {
            Completion::Recorded => return Ok(Overdue::Recovered),
            Completion::AlreadyRecorded => return Ok(Overdue::MovedOn),
            Completion::NotAssembled => {}
        }
    }
    let mut conn = ctx.pool.get().await?;
    let failure = Failure::of(FailureCode::Expired);
    match transition(
        &mut conn,
        row.id,
        row.state,
        UploadEvent::Expired,
        Some(&failure),
        &Actor::Sweeper,
    )
    .await?
    {
        Ok(Transition::Applied(_)) => {
            drop(conn);
            let multipart = MultipartUpload::of(&row.owner_id, row.id, &row.store_upload_id);
            ctx.store.abort_multipart(&multipart).await?;
            Ok(Overdue::Expired)
        }
        _ => Ok(Overdue::MovedOn),
    }
}

/// Sweeps every `every`, for as long as the worker runs.
pub async fn sweep_forever(
    ctx: std::sync::Arc<JobContext>,
    every: Duration,
    stuck_after: Duration,
) {
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        match sweep_once(&ctx, stuck_after).await {
            Ok(report) if report != SweepReport::default() => tracing::info!(?report, "sweep"),
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "sweep failed; will try again"),
        }
    }
}
