//! How a job ends: done, retry later, or abort; and how its subject fails when it
//! gives up. Retries are scheduled as new job rows with a later `run_at` (the
//! backend itself would re-run a failure at once).

use std::time::Duration;

use upload_db::models::NewNotification;
use upload_db::{submissions, uploads};
use upload_domain::{
    Actor, Failure, FailureCode, NotificationKind, SubmissionId, UploadEvent, UploadId, UploadState,
};

use crate::JobContext;

/// How many attempts a job gets when a failure may as well be the file's as the
/// infrastructure's (a media tool failing on it): enough to ride out a blip, few
/// enough that a broken file fails in minutes, not hours.
pub const FEW_ATTEMPTS: u32 = 3;

/// Why a job did not finish.
#[derive(Debug, thiserror::Error)]
pub enum JobError {
    /// A passing problem (store 5xx, dropped connection, scanner or database away):
    /// try again later, over a horizon that outlasts an outage.
    #[error("retryable: {0:#}")]
    Retry(anyhow::Error),
    /// A failure that may be the file's or a passing one's: a few attempts.
    #[error("retryable a few times: {0:#}")]
    RetryFew(anyhow::Error),
    /// The file or the upload is wrong; trying again cannot help. The failure is
    /// what the seller reads; the cause, when there is one, stays in the logs and
    /// the job's row.
    #[error("aborted ({}): {}{}", .failure.code, .failure.message, .cause.as_ref().map(|c| format!(" ({c:#})")).unwrap_or_default())]
    Abort {
        /// Code and seller-facing message.
        failure: Failure,
        /// What went wrong inside, for operators.
        cause: Option<anyhow::Error>,
    },
}

impl JobError {
    /// A retryable failure with context.
    pub fn retry(e: impl Into<anyhow::Error>) -> Self {
        JobError::Retry(e.into())
    }

    /// An abort with `code` and a message for the seller.
    pub fn abort(code: FailureCode, message: impl Into<String>) -> Self {
        JobError::Abort {
            failure: Failure::new(code, message),
            cause: None,
        }
    }

    /// An abort with `code`, the seller reading its meaning and the cause kept
    /// for operators (it may name internal addresses).
    pub fn abort_because(code: FailureCode, cause: impl Into<anyhow::Error>) -> Self {
        JobError::Abort {
            failure: Failure::of(code),
            cause: Some(cause.into()),
        }
    }

    /// The attempts this error allows, of `max` for passing failures.
    pub fn attempts_allowed(&self, max: u32) -> u32 {
        match self {
            JobError::Retry(_) => max,
            JobError::RetryFew(_) => FEW_ATTEMPTS.min(max),
            JobError::Abort { .. } => 0,
        }
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
            JobError::abort_because(FailureCode::StoreRejected, e)
        }
    }
}

/// The delay before attempt `next` (2, 3, ...): base, 2×base, 4×base, ... capped at `max`.
pub fn retry_delay(base: Duration, next: u32, max: Duration) -> Duration {
    let exp = next.saturating_sub(2).min(20);
    base.saturating_mul(2u32.saturating_pow(exp)).min(max)
}

/// Fails a submission, gives its unstored uploads back to the seller and tells
/// them, in one transaction.
pub async fn fail_submission(
    ctx: &JobContext,
    id: SubmissionId,
    failure: Failure,
    by: &Actor,
) -> Result<(), upload_db::DbError> {
    let mut conn = ctx.pool.get().await?;
    let Some(sub) = submissions::find(&mut conn, id).await? else {
        return Ok(());
    };
    let notification = NewNotification::about_submission(
        &sub,
        NotificationKind::ItemFailed,
        format!(
            "\"{}\" could not be saved: {}. Your files are kept; submit the item again, and contact support if it fails again",
            sub.title, failure.message
        ),
        serde_json::json!({ "code": failure.code.as_str(), "item_id": sub.item_id, "reason": failure.message }),
    );
    submissions::fail(
        &mut conn,
        sub.id,
        &failure,
        notification,
        ctx.delivers_webhooks(),
        by,
    )
    .await?;
    Ok(())
}

/// Moves the upload to `failed` from whichever processing state it is in, and
/// tells the seller, in one transaction.
pub async fn fail_upload(
    ctx: &JobContext,
    id: UploadId,
    failure: Failure,
    by: &Actor,
) -> Result<(), upload_db::DbError> {
    use diesel_async::AsyncConnection;
    let mut conn = ctx.pool.get().await?;
    let Some(row) = uploads::find(&mut conn, id).await? else {
        return Ok(());
    };
    let current = row.state;
    if current.apply(UploadEvent::Failed).is_ok() {
        let deliver = ctx.delivers_webhooks();
        let notification = NewNotification::about_upload(
            &row,
            NotificationKind::UploadFailed,
            format!(
                "{} could not be processed; upload it again, and contact support if it fails again",
                row.file_name
            ),
            serde_json::json!({ "code": failure.code.as_str(), "reason": failure.message }),
        );
        conn.transaction::<_, upload_db::DbError, _>(async move |conn| {
            let moved =
                uploads::transition(conn, id, current, UploadEvent::Failed, Some(&failure), by)
                    .await?;
            if let Ok(uploads::Transition::Applied(_)) = moved {
                upload_db::notifications::record(conn, &notification, deliver).await?;
            }
            Ok(())
        })
        .await?;
    } else if current != UploadState::Failed {
        tracing::warn!(upload = %id, state = %current, "upload not failed: its state does not allow it");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_grow_and_are_capped() {
        let (base, max) = (Duration::from_secs(5), Duration::from_secs(3600));
        assert_eq!(retry_delay(base, 2, max), Duration::from_secs(5));
        assert_eq!(retry_delay(base, 3, max), Duration::from_secs(10));
        assert_eq!(retry_delay(base, 4, max), Duration::from_secs(20));
        assert_eq!(retry_delay(base, 40, max), Duration::from_secs(3600));
    }

    #[test]
    fn twelve_attempts_outlast_a_two_hour_outage() {
        let (base, max) = (Duration::from_secs(5), Duration::from_secs(3600));
        let horizon: Duration = (2..=12).map(|n| retry_delay(base, n, max)).sum();
        assert!(horizon > Duration::from_secs(2 * 3600), "{horizon:?}");
        assert!(horizon < Duration::from_secs(3 * 3600), "{horizon:?}");
    }

    #[test]
    fn what_may_be_the_files_fault_gets_few_attempts() {
        let e = JobError::RetryFew(anyhow::anyhow!("ffmpeg failed"));
        assert_eq!(e.attempts_allowed(12), FEW_ATTEMPTS);
        assert_eq!(
            JobError::retry(anyhow::anyhow!("store away")).attempts_allowed(12),
            12
        );
        assert_eq!(
            JobError::abort(FailureCode::SizeMismatch, "x").attempts_allowed(12),
            0
        );
    }
}
