//! The sweeper's queries: uploads overdue or stalled, submissions stalled. States,
//! stages and statuses are bound as parameters, named by the domain.

use std::time::Duration;

use diesel::prelude::*;
use diesel::sql_types::{Array, BigInt, Double, Nullable, Text};
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use upload_domain::{StageStatus, SubmissionId, SubmissionState, UploadId, UploadState};

use crate::DbError;
use crate::jobs::{LIVE_JOB_STATUSES, Queue};
use crate::models::UploadRow;
use crate::schema::uploads;

/// Unfinished uploads (`created`, `uploading`) past their deadline, oldest first.
pub async fn overdue(conn: &mut AsyncPgConnection, limit: i64) -> Result<Vec<UploadRow>, DbError> {
    Ok(uploads::table
        .filter(uploads::state.eq_any([UploadState::Created, UploadState::Uploading]))
        .filter(uploads::expires_at.lt(diesel::dsl::now))
        .order(uploads::expires_at.asc())
        .limit(limit)
        .select(UploadRow::as_select())
        .load(conn)
        .await?)
}

/// Ready uploads not submitted within `ttl` of becoming ready, oldest first.
pub async fn ready_overdue(
    conn: &mut AsyncPgConnection,
    ttl: Duration,
    limit: i64,
) -> Result<Vec<UploadRow>, DbError> {
    let since = chrono::Utc::now()
        - chrono::Duration::from_std(ttl).map_err(|e| DbError::Corrupt(e.to_string()))?;
    Ok(uploads::table
        .filter(uploads::state.eq(UploadState::Ready))
        .filter(uploads::updated_at.lt(since))
        .order(uploads::updated_at.asc())
        .limit(limit)
        .select(UploadRow::as_select())
        .load(conn)
        .await?)
}

/// An upload whose processing has no live job.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stalled {
    /// The upload.
    pub id: UploadId,
    /// Its state.
    pub state: UploadState,
    /// Job rows ever enqueued for it on the queue (one per attempt).
    pub attempts: u32,
}

/// Uploads waiting on `queue` (scan: `uploaded`/`scanning`; metadata and preview:
/// `processing` with that stage unfinished) unchanged for `stuck_after`, with no
/// pending, queued or running job on `queue`.
pub async fn stalled(
    conn: &mut AsyncPgConnection,
    queue: Queue,
    stuck_after: Duration,
    limit: i64,
) -> Result<Vec<Stalled>, DbError> {
    #[derive(QueryableByName)]
    struct Row {
        #[diesel(sql_type = diesel::sql_types::Uuid)]
        id: UploadId,
        #[diesel(sql_type = Text)]
        state: UploadState,
        #[diesel(sql_type = BigInt)]
        attempts: i64,
    }
    let Some((states, stage)) = queue.uploads_waiting() else {
        return Ok(Vec::new());
    };
    let rows: Vec<Row> = diesel::sql_query(
        "SELECT u.id, u.state,
                (SELECT count(*) FROM apalis.jobs j
                  WHERE j.job_type = $1 AND j.idempotency_key LIKE u.id::text || '#%') AS attempts
         FROM uploads u
         WHERE u.state = ANY($4)
           AND ($5::text IS NULL OR NOT EXISTS (
               SELECT 1 FROM upload_progress p
               WHERE p.upload_id = u.id AND p.stage = $5 AND p.status = ANY($6)))
           AND u.updated_at < now() - make_interval(secs => $2)
           AND NOT EXISTS (
               SELECT 1 FROM apalis.jobs j
               WHERE j.job_type = $1 AND j.idempotency_key LIKE u.id::text || '#%'
                 AND j.status = ANY($7))
         ORDER BY u.updated_at
         LIMIT $3",
    )
    .bind::<Text, _>(queue.name())
    .bind::<Double, _>(stuck_after.as_secs_f64())
    .bind::<BigInt, _>(limit)
    .bind::<Array<Text>, _>(states)
    .bind::<Nullable<Text>, _>(stage)
    .bind::<Array<Text>, _>(&StageStatus::SETTLED[..])
    .bind::<Array<Text>, _>(&LIVE_JOB_STATUSES[..])
    .load(conn)
    .await?;
    Ok(rows
        .into_iter()
        .map(|r| Stalled {
            id: r.id,
            state: r.state,
            attempts: u32::try_from(r.attempts).unwrap_or(u32::MAX),
        })
        .collect())
}

/// A submission whose background work has no live job.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StalledSubmission {
    /// The submission.
    pub id: SubmissionId,
    /// The queue it waits on: persist when queued, move when persisted.
    pub queue: Queue,
    /// Job rows ever enqueued for it on that queue (one per attempt).
    pub attempts: u32,
}

/// Submissions queued or persisted, unchanged for `stuck_after`, with no pending,
/// queued or running job on the queue they wait on.
pub async fn stalled_submissions(
    conn: &mut AsyncPgConnection,
    stuck_after: Duration,
    limit: i64,
) -> Result<Vec<StalledSubmission>, DbError> {
    #[derive(QueryableByName)]
    struct Row {
        #[diesel(sql_type = diesel::sql_types::Uuid)]
        id: SubmissionId,
        #[diesel(sql_type = Text)]
        state: SubmissionState,
        #[diesel(sql_type = BigInt)]
        attempts: i64,
    }
    let rows: Vec<Row> = diesel::sql_query(
        "WITH waiting AS (
             SELECT s.id, s.state, s.updated_at,
                    CASE s.state WHEN $5 THEN $1 ELSE $2 END AS queue
             FROM item_submissions s
             WHERE s.state = ANY($6)
               AND s.updated_at < now() - make_interval(secs => $3))
         SELECT w.id, w.state,
                (SELECT count(*) FROM apalis.jobs j
                  WHERE j.job_type = w.queue AND j.idempotency_key LIKE w.id::text || '#%') AS attempts
         FROM waiting w
         WHERE NOT EXISTS (
               SELECT 1 FROM apalis.jobs j
               WHERE j.job_type = w.queue AND j.idempotency_key LIKE w.id::text || '#%'
                 AND j.status = ANY($7))
         ORDER BY w.updated_at
         LIMIT $4",
    )
    .bind::<Text, _>(Queue::Persist.name())
    .bind::<Text, _>(Queue::Move.name())
    .bind::<Double, _>(stuck_after.as_secs_f64())
    .bind::<BigInt, _>(limit)
    .bind::<Text, _>(SubmissionState::Queued)
    .bind::<Array<Text>, _>(&[SubmissionState::Queued, SubmissionState::Persisted][..])
    .bind::<Array<Text>, _>(&LIVE_JOB_STATUSES[..])
    .load(conn)
    .await?;
    // Only queued and persisted rows are selected: each waits on a queue.
    Ok(rows
        .into_iter()
        .filter_map(|r| {
            Some(StalledSubmission {
                id: r.id,
                queue: Queue::of_submission(r.state)?,
                attempts: u32::try_from(r.attempts).unwrap_or(u32::MAX),
            })
        })
        .collect())
}
