//! How a job ends: done, retry later, or abort; and how its subject fails when it
//! gives up. Retries are scheduled as new job rows with a later `run_at` (the
//! backend itself would re-run a failure at once).

use std::time::Duration;

use upload_db::models::NewNotification;
use upload_db::{submissions, uploads};
use upload_domain::{
    Failure, FailureCode, NotificationKind, SubmissionId, UploadEvent, UploadId, UploadState,
};

use crate::JobContext;

/// Why a job did not finish.
#[derive(Debug, thiserror::Error)]
pub enum JobError {
    /// A passing problem (store 5xx, dropped connection, database trouble): try again later.
    #[error("retryable: {0:#}")]
    Retry(anyhow::Error),
    /// The file or the upload is wrong; trying again cannot help.
    #[error("aborted ({}): {}", .0.code, .0.message)]
    Abort(Failure),
}

impl JobError {
    /// A retryable failure with context.
    pub fn retry(e: impl Into<anyhow::Error>) -> Self {
        JobError::Retry(e.into())
    }

    /// An abort with `code` and a message for the seller.
    pub fn abort(code: FailureCode, message: impl Into<String>) -> Self {
        JobError::Abort(Failure::new(code, message))
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
            JobError::abort(FailureCode::StoreRejected, e.to_string())
        }
    }
}

/// The delay before attempt `next` (2, 3, ...): base, 2×base, 4×base, ... capped at an hour.
pub fn retry_delay(base: Duration, next: u32) -> Duration {
    let exp = next.saturating_sub(2).min(16);
    (base * 2u32.pow(exp)).min(Duration::from_secs(3600))
}

/// Fails a submission, gives its unstored uploads back to the seller and tells
/// them, in one transaction.
pub async fn fail_submission(
    ctx: &JobContext,
    id: SubmissionId,
    failure: Failure,
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
                uploads::transition(conn, id, current, UploadEvent::Failed, Some(&failure)).await?;
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
        let base = Duration::from_secs(5);
        assert_eq!(retry_delay(base, 2), Duration::from_secs(5));
        assert_eq!(retry_delay(base, 3), Duration::from_secs(10));
        assert_eq!(retry_delay(base, 4), Duration::from_secs(20));
        assert_eq!(retry_delay(base, 40), Duration::from_secs(3600));
    }
}
