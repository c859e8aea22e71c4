//! The persist job: saves a submitted item's fields in Postgres, then queues the
//! move of its files. One transaction, so running it twice changes nothing.

use upload_db::jobs::{Queue, SubmissionJob};
use upload_db::submissions;

use crate::JobContext;
use crate::job::job;
use crate::outcome::JobError;

job!(
    /// The persist queue's job.
    Persist,
    SubmissionJob,
    Queue::Persist,
    run
);

/// Runs the persist job for one submission.
pub async fn run(ctx: &JobContext, job: SubmissionJob) -> Result<(), JobError> {
    let mut conn = ctx.pool.get().await.map_err(upload_db::DbError::from)?;
    match submissions::persist(
        &mut conn,
        job.submission_id,
        &crate::job::actor(Queue::Persist, &job),
    )
    .await?
    {
        Some(state) => {
            tracing::info!(submission = %job.submission_id, %state, "submission persisted");
        }
        None => {
            tracing::warn!(submission = %job.submission_id, "no such submission; nothing to do")
        }
    }
    Ok(())
}
