//! How a job ends: done, retry later, or abort. Retries are scheduled as new job
//! rows with a later `run_at` (the backend itself would re-run a failure at once).

use std::time::Duration;

use chrono::Utc;
use upload_db::items;
use upload_db::jobs::{self, JobPayload, Queue, SubmissionJob, UploadJob};
use upload_db::models::NewNotification;
use upload_db::uploads::{self, FailureNote};
use upload_domain::{UploadEvent, UploadState};

use crate::JobContext;

/// Why a job did not finish.
#[derive(Debug, thiserror::Error)]
pub enum JobError {
    /// A passing problem (store 5xx, dropped connection, database trouble): try again later.
    #[error("retryable: {0:#}")]
    Retry(anyhow::Error),
    /// The file or the upload is wrong; trying again cannot help.
    #[error("aborted ({code}): {message}")]
    Abort {
        /// A stable code for programs.
        code: &'static str,
        /// A sentence for the seller.
        message: String,
    },
}

impl JobError {
    /// A retryable failure with context.
    pub fn retry(e: impl Into<anyhow::Error>) -> Self {
        JobError::Retry(e.into())
    }
}

impl From<upload_db::DbError> for JobError {
    fn from(e: upload_db::DbError) -> Self {
        JobError::Retry(e.into())
    }
}

impl From<diesel::result::Error> for JobError {
    fn from(e: diesel::result::Error) -> Self {
        JobError::Retry(upload_db::DbError::from(e).into())
    }
}

impl From<upload_storage::StoreError> for JobError {
    fn from(e: upload_storage::StoreError) -> Self {
        if e.is_retryable() {
            JobError::Retry(e.into())
        } else {
            JobError::Abort {
                code: "store_rejected",
                message: e.to_string(),
            }
        }
    }
}

/// The delay before attempt `next` (2, 3, ...): base, 2×base, 4×base, ... capped at an hour.
pub fn retry_delay(base: Duration, next: u32) -> Duration {
    let exp = next.saturating_sub(2).min(16);
    (base * 2u32.pow(exp)).min(Duration::from_secs(3600))
}

/// The stable code a job's subject fails with when `queue` runs out of attempts.
fn exhausted_code(queue: Queue) -> &'static str {
    match queue {
        Queue::Scan => "scan_failed",
        Queue::Metadata => "metadata_failed",
        Queue::Preview => "preview_failed",
        Queue::Notify => "notify_failed",
        Queue::Persist => "persist_failed",
        Queue::Move => "move_failed",
    }
}

/// After a failed attempt: schedules the next one when the error is retryable and
/// attempts remain (returns None), else returns the code and message to fail with.
async fn retry_or_give_up<J: JobPayload + std::fmt::Debug>(
    ctx: &JobContext,
    queue: Queue,
    job: J,
    err: &JobError,
) -> Result<Option<(&'static str, String)>, upload_db::DbError> {
    match err {
        JobError::Retry(e) if job.attempt() < ctx.config.max_attempts => {
            let next = job.next_attempt();
            let delay = retry_delay(ctx.config.retry_base, next.attempt());
            tracing::warn!(?job, queue = queue.name(), ?delay, error = %e, "job failed; retry scheduled");
            let run_at = Utc::now() + chrono::Duration::from_std(delay).unwrap_or_default();
            let mut conn = ctx.pool.get().await?;
            jobs::enqueue(&mut conn, queue, &next, Some(run_at)).await?;
            Ok(None)
        }
        JobError::Retry(e) => Ok(Some((
            exhausted_code(queue),
            format!("processing failed after {} attempts: {e:#}", job.attempt()),
        ))),
        JobError::Abort { code, message } => Ok(Some((code, message.clone()))),
    }
}

/// Turns an upload job's result into its follow-up: nothing, a scheduled retry,
/// or the upload's failure. Returns the error to apalis so `apalis.jobs` shows it.
pub async fn settle(
    ctx: &JobContext,
    queue: Queue,
    job: UploadJob,
    result: Result<(), JobError>,
) -> Result<(), apalis::prelude::BoxDynError> {
    let Err(err) = result else {
        return Ok(());
    };
    if let Some((code, message)) = retry_or_give_up(ctx, queue, job, &err).await? {
        tracing::error!(upload = %job.upload_id, code, %message, "job gave up; upload failed");
        fail_upload(ctx, job, code, &message).await?;
    }
    Err(err.into())
}

/// Turns a submission job's result (persist, move) into its follow-up: nothing, a
/// scheduled retry, or the submission's failure.
pub async fn settle_submission(
    ctx: &JobContext,
    queue: Queue,
    job: SubmissionJob,
    result: Result<(), JobError>,
) -> Result<(), apalis::prelude::BoxDynError> {
    let Err(err) = result else {
        return Ok(());
    };
    if let Some((code, message)) = retry_or_give_up(ctx, queue, job, &err).await? {
        tracing::error!(submission = %job.submission_id, code, %message, "job gave up; submission failed");
        fail_submission(ctx, job, code, &message).await?;
    }
    Err(err.into())
}

/// Fails a submission, gives its unstored uploads back to the seller and tells
/// them, in one transaction.
pub async fn fail_submission(
    ctx: &JobContext,
    job: SubmissionJob,
    code: &str,
    message: &str,
) -> Result<(), upload_db::DbError> {
    let mut conn = ctx.pool.get().await?;
    let Some(sub) = items::submission(&mut conn, job.submission_id).await? else {
        return Ok(());
    };
    let notification = NewNotification::about_submission(
        &sub,
        "item.failed",
        format!(
            "\"{}\" could not be saved: {message}. Your files are kept; submit the item again, and contact support if it fails again",
            sub.title
        ),
        serde_json::json!({ "code": code, "item_id": sub.item_id, "reason": message }),
    );
    items::fail(
        &mut conn,
        sub.id,
        FailureNote { code, message },
        notification,
        ctx.config.webhook.is_some(),
    )
    .await?;
    Ok(())
}

/// Moves the upload to `failed` from whichever processing state it is in, and
/// tells the seller, in one transaction.
pub async fn fail_upload(
    ctx: &JobContext,
    job: UploadJob,
    code: &str,
    message: &str,
) -> Result<(), upload_db::DbError> {
    use diesel_async::AsyncConnection;
    let mut conn = ctx.pool.get().await?;
    let Some(row) = uploads::find(&mut conn, job.upload_id).await? else {
        return Ok(());
    };
    let current = row.state()?;
    if current.apply(UploadEvent::Failed).is_ok() {
        let deliver = ctx.config.webhook.is_some();
        let notification = NewNotification::about_upload(
            &row,
            "upload.failed",
            format!(
                "{} could not be processed; upload it again, and contact support if it fails again",
                row.file_name
            ),
            serde_json::json!({ "code": code, "reason": message }),
        );
        let (code, message) = (code.to_owned(), message.to_owned());
        conn.transaction::<_, upload_db::DbError, _>(async move |conn| {
            let note = FailureNote {
                code: &code,
                message: &message,
            };
            let moved = uploads::transition(
                conn,
                job.upload_id,
                current,
                UploadEvent::Failed,
                Some(note),
            )
            .await?;
            if let Ok(upload_db::uploads::Transition::Applied(_)) = moved {
                upload_db::notifications::record(conn, &notification, deliver).await?;
            }
            Ok(())
        })
        .await?;
    } else if current != UploadState::Failed {
        tracing::warn!(upload = %job.upload_id, state = %current, "upload not failed: its state does not allow it");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_grow_and_are_capped() {
        let base = Duration::from_secs(5);
        assert_eq!(retry_delay(base, 2), Duration::from_secs(5));
        assert_eq!(retry_delay(base, 3), Duration::from_secs(10));
        assert_eq!(retry_delay(base, 4), Duration::from_secs(20));
        assert_eq!(retry_delay(base, 40), Duration::from_secs(3600));
    }
}
