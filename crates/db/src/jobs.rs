//! The job queue as seen by the domain: queue names, the one job payload, and
//! enqueueing with plain SQL so it can share a transaction with a domain write.
//!
//! Retries are explicit: a job that fails with a retryable error enqueues its own
//! next attempt with a later `run_at`; the apalis row itself allows one attempt, so
//! the backend never re-runs a failure at once in a hot loop. A worker that dies
//! mid-job has its row re-queued by apalis's heartbeat check.

use chrono::{DateTime, Utc};
use diesel::sql_types::{Integer, Nullable, Text, Timestamptz};
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use serde::{Deserialize, Serialize};
use upload_domain::{NotificationId, SubmissionId, UploadId};

use crate::DbError;

pub use upload_domain::Queue;

/// The apalis job statuses of a job that is still to run or running: a subject
/// with one of these is not stalled.
pub const LIVE_JOB_STATUSES: [&str; 3] = ["Pending", "Queued", "Running"];

/// A job payload: ids only, which attempt it is, and the key that makes
/// enqueueing it idempotent.
pub trait JobPayload: Serialize + Copy {
    /// One row per key and queue, ever.
    fn idempotency_key(&self) -> String;
    /// 1 for the first run, then 2, 3, ... for scheduled retries.
    fn attempt(&self) -> u32;
    /// The same job's next attempt.
    fn next_attempt(self) -> Self;
}

/// Implements [`JobPayload`] for a job made of one id and an attempt number: one
/// row per id and attempt, ever (`<id>#<attempt>`).
macro_rules! attempted_job {
    ($job:ty, $id:ident) => {
        impl JobPayload for $job {
            fn idempotency_key(&self) -> String {
                format!("{}#{}", self.$id, self.attempt)
            }

            fn attempt(&self) -> u32 {
                self.attempt
            }

            fn next_attempt(self) -> Self {
                Self {
                    attempt: self.attempt + 1,
                    ..self
                }
            }
        }
    };
}

/// A submitted item's background work (persist, then move): the submission's id
/// and which attempt this is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct SubmissionJob {
    /// The `item_submissions` row.
    pub submission_id: SubmissionId,
    /// 1, 2, 3, ...
    pub attempt: u32,
}

impl SubmissionJob {
    /// The first attempt for a submission.
    pub fn first(submission_id: SubmissionId) -> Self {
        Self {
            submission_id,
            attempt: 1,
        }
    }
}

attempted_job!(SubmissionJob, submission_id);

/// A notification to deliver: its id and which attempt this is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct NotifyJob {
    /// The `notifications` row.
    pub notification_id: NotificationId,
    /// 1, 2, 3, ...
    pub attempt: u32,
}

impl NotifyJob {
    /// The first delivery of a notification.
    pub fn first(notification_id: NotificationId) -> Self {
        Self {
            notification_id,
            attempt: 1,
        }
    }
}

attempted_job!(NotifyJob, notification_id);

/// A re-scan of the catalogue for one signature database version, and which
/// attempt this is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct RescanJob {
    /// The `rescan_runs` row: the signature version objects are brought up to.
    pub signature_version: i64,
    /// 1, 2, 3, ...
    pub attempt: u32,
}

attempted_job!(RescanJob, signature_version);

/// Every upload job carries the upload's id and which attempt this is; never data.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct UploadJob {
    /// The upload to work on.
    pub upload_id: UploadId,
    /// 1 for the first run, then 2, 3, ... for scheduled retries.
    pub attempt: u32,
}

impl UploadJob {
    /// The first attempt for an upload.
    pub fn first(upload_id: UploadId) -> Self {
        Self {
            upload_id,
            attempt: 1,
        }
    }
}

attempted_job!(UploadJob, upload_id);

/// Enqueues `job` on `queue` to run at `run_at`, or at once when `None`. Returns
/// false when the same (queue, upload, attempt) was enqueued before, which makes
/// enqueueing idempotent.
///
/// "At once" is the database's `now()`, not the application's clock: apalis's
/// insert trigger wakes workers only for `run_at <= now()`, and inside a transaction
/// `now()` is the transaction's start, earlier than any clock read after it.
pub async fn enqueue<J: JobPayload>(
    conn: &mut AsyncPgConnection,
    queue: Queue,
    job: &J,
    run_at: Option<DateTime<Utc>>,
) -> Result<bool, DbError> {
    let payload = serde_json::to_string(job).map_err(|e| DbError::Corrupt(e.to_string()))?;
    // The trace of the RPC or job that enqueues it continues in the job.
    let traceparent = upload_telemetry::current_traceparent();
    let inserted = diesel::sql_query(
        "INSERT INTO apalis.jobs
             (id, job_type, job, status, attempts, max_attempts, run_at, priority, idempotency_key,
              metadata)
         VALUES (apalis.generate_ulid(), $1, convert_to($2, 'UTF8'), 'Pending', 0, $3, COALESCE($4, now()), 0, $5,
                 CASE WHEN $6::text IS NULL THEN NULL ELSE hstore('traceparent', $6::text) END)
         ON CONFLICT (job_type, idempotency_key) DO NOTHING",
    )
    .bind::<Text, _>(queue.name())
    .bind::<Text, _>(payload)
    .bind::<Integer, _>(1)
    .bind::<Nullable<Timestamptz>, _>(run_at)
    .bind::<Text, _>(job.idempotency_key())
    .bind::<Nullable<Text>, _>(traceparent)
    .execute(conn)
    .await?;
    Ok(inserted == 1)
}

/// The trace context the job `key` of `queue` was enqueued under, if any.
pub async fn traceparent(
    conn: &mut AsyncPgConnection,
    queue: Queue,
    key: &str,
) -> Result<Option<String>, DbError> {
    #[derive(diesel::QueryableByName)]
    struct Row {
        #[diesel(sql_type = Nullable<Text>)]
        traceparent: Option<String>,
    }
    let rows: Vec<Row> = diesel::sql_query(
        "SELECT metadata -> 'traceparent' AS traceparent FROM apalis.jobs
         WHERE job_type = $1 AND idempotency_key = $2",
    )
    .bind::<Text, _>(queue.name())
    .bind::<Text, _>(key)
    .load(conn)
    .await?;
    Ok(rows.into_iter().next().and_then(|r| r.traceparent))
}

/// How far a subject's jobs on one queue have come.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attempts {
    /// The next attempt's number (one row per attempt, ever: rows + 1).
    pub next: u32,
    /// The status of its job that is pending, queued or running, if one is.
    pub live: Option<String>,
}

/// How far the jobs of `subject` (an upload, submission or notification id) on
/// `queue` have come.
pub async fn attempts(
    conn: &mut AsyncPgConnection,
    queue: Queue,
    subject: &str,
) -> Result<Attempts, DbError> {
    #[derive(diesel::QueryableByName)]
    struct Row {
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        rows: i64,
        #[diesel(sql_type = Nullable<Text>)]
        live: Option<String>,
    }
    let row: Row = diesel::sql_query(
        "SELECT count(*) AS rows,
                max(status) FILTER (WHERE status = ANY($3)) AS live
         FROM apalis.jobs WHERE job_type = $1 AND idempotency_key LIKE $2 || '#%'",
    )
    .bind::<Text, _>(queue.name())
    .bind::<Text, _>(subject)
    .bind::<diesel::sql_types::Array<Text>, _>(LIVE_JOB_STATUSES.to_vec())
    .get_result(conn)
    .await?;
    Ok(Attempts {
        next: u32::try_from(row.rows)
            .unwrap_or(u32::MAX)
            .saturating_add(1),
        live: row.live,
    })
}

/// Enqueues the next attempt of `subject`'s job on `queue` (made by `job` from
/// its attempt number) unless one is live: a step that runs again, or work an
/// operator retries after earlier attempts, queues exactly one. Returns the
/// attempt queued, or None when one was live.
pub async fn enqueue_next<J: JobPayload>(
    conn: &mut AsyncPgConnection,
    queue: Queue,
    subject: &str,
    job: impl FnOnce(u32) -> J,
) -> Result<Option<u32>, DbError> {
    let state = attempts(conn, queue, subject).await?;
    if state.live.is_some() {
        return Ok(None);
    }
    enqueue(conn, queue, &job(state.next), None).await?;
    Ok(Some(state.next))
}

/// One queue's backlog.
#[derive(Debug, Clone, PartialEq, diesel::QueryableByName)]
pub struct Depth {
    /// The queue's name.
    #[diesel(sql_type = Text)]
    pub queue: String,
    /// Jobs due now, waiting for a worker.
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    pub ready: i64,
    /// How long the oldest of them has waited, in seconds.
    #[diesel(sql_type = diesel::sql_types::Double)]
    pub oldest_ready_secs: f64,
}

/// Every queue with jobs due now: how many, and the oldest one's wait. One
/// query, on the index apalis fetches by (job type, status, run_at).
pub async fn depths(conn: &mut AsyncPgConnection) -> Result<Vec<Depth>, DbError> {
    Ok(diesel::sql_query(
        "SELECT job_type AS queue, count(*) AS ready,
                coalesce(extract(epoch FROM now() - min(run_at)), 0)::float8 AS oldest_ready_secs
         FROM apalis.jobs
         WHERE status = 'Pending' AND run_at <= now()
         GROUP BY job_type",
    )
    .load(conn)
    .await?)
}

/// How many jobs of `queue` are due now or running: the work a lower-priority
/// queue gives way to.
pub async fn busy(conn: &mut AsyncPgConnection, queue: Queue) -> Result<i64, DbError> {
    #[derive(diesel::QueryableByName)]
    struct Count {
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        n: i64,
    }
    let count: Count = diesel::sql_query(
        "SELECT count(*) AS n FROM apalis.jobs
          WHERE job_type = $1 AND status = ANY($2) AND run_at <= now()",
    )
    .bind::<Text, _>(queue.name())
    .bind::<diesel::sql_types::Array<Text>, _>(LIVE_JOB_STATUSES.to_vec())
    .get_result(conn)
    .await?;
    Ok(count.n)
}
