//! The persist job: saves a submitted item's fields in Postgres, then queues the
//! move of its files. One transaction, so running it twice changes nothing.

use futures::future::BoxFuture;
use upload_db::jobs::{Queue, SubmissionJob};
use upload_db::submissions;

use crate::JobContext;
use crate::job::Job;
use crate::outcome::JobError;

/// The persist queue's job.
pub struct Persist;

impl Job for Persist {
    type Payload = SubmissionJob;
    const QUEUE: Queue = Queue::Persist;

    fn run(ctx: &JobContext, job: SubmissionJob) -> BoxFuture<'_, Result<(), JobError>> {
        Box::pin(run(ctx, job))
    }
}

/// Runs the persist job for one submission.
pub async fn run(ctx: &JobContext, job: SubmissionJob) -> Result<(), JobError> {
    let mut conn = ctx.pool.get().await.map_err(upload_db::DbError::from)?;
    match submissions::persist(&mut conn, job.submission_id).await? {
        Some(state) => {
            tracing::info!(submission = %job.submission_id, %state, "submission persisted");
        }
        None => {
            tracing::warn!(submission = %job.submission_id, "no such submission; nothing to do")
        }
    }
    Ok(())
}
