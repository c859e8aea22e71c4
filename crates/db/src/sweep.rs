//! The sweeper's queries: uploads overdue or stalled.

use std::time::Duration;

use diesel::prelude::*;
use diesel::sql_types::{BigInt, Double, Text};
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use upload_domain::{UploadId, UploadState};

use crate::DbError;
use crate::jobs::Queue;
use crate::models::UploadRow;
use crate::schema::uploads;

/// Unfinished uploads (`created`, `uploading`) past their deadline, oldest first.
pub async fn overdue(conn: &mut AsyncPgConnection, limit: i64) -> Result<Vec<UploadRow>, DbError> {
    Ok(uploads::table
        .filter(uploads::state.eq_any([
            UploadState::Created.as_str(),
            UploadState::Uploading.as_str(),
        ]))
        .filter(uploads::expires_at.lt(diesel::dsl::now))
        .order(uploads::expires_at.asc())
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
        id: uuid::Uuid,
        #[diesel(sql_type = Text)]
        state: String,
        #[diesel(sql_type = BigInt)]
        attempts: i64,
    }
    // Which uploads the queue is responsible for: the scan for uploaded and
    // scanning files; metadata and previews for processing files whose stage has
    // not finished. Notifications never hold an upload up.
    let waiting_on = match queue {
        Queue::Scan => "u.state IN ('uploaded', 'scanning')",
        Queue::Metadata => {
            "u.state = 'processing' AND NOT EXISTS (SELECT 1 FROM upload_progress p
                 WHERE p.upload_id = u.id AND p.stage = 'metadata' AND p.status IN ('done', 'skipped'))"
        }
        Queue::Preview => {
            "u.state = 'processing' AND NOT EXISTS (SELECT 1 FROM upload_progress p
                 WHERE p.upload_id = u.id AND p.stage = 'preview' AND p.status IN ('done', 'skipped'))"
        }
        // Notifications never hold an upload up; submissions have their own query.
        Queue::Notify | Queue::Persist | Queue::Move => return Ok(Vec::new()),
    };
    let rows: Vec<Row> = diesel::sql_query(format!(
        "SELECT u.id, u.state,
                (SELECT count(*) FROM apalis.jobs j
                  WHERE j.job_type = $1 AND j.idempotency_key LIKE u.id::text || '#%') AS attempts
         FROM uploads u
         WHERE {waiting_on}
           AND u.updated_at < now() - make_interval(secs => $2)
           AND NOT EXISTS (
               SELECT 1 FROM apalis.jobs j
               WHERE j.job_type = $1 AND j.idempotency_key LIKE u.id::text || '#%'
                 AND j.status IN ('Pending', 'Queued', 'Running'))
         ORDER BY u.updated_at
         LIMIT $3"
    ))
    .bind::<Text, _>(queue.name())
    .bind::<Double, _>(stuck_after.as_secs_f64())
    .bind::<BigInt, _>(limit)
    .load(conn)
    .await?;
    rows.into_iter()
        .map(|r| {
            Ok(Stalled {
                id: UploadId::from(r.id),
                state: r.state.parse().map_err(DbError::Corrupt)?,
                attempts: u32::try_from(r.attempts).unwrap_or(u32::MAX),
            })
        })
        .collect()
}

/// A submission whose background work has no live job.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StalledSubmission {
    /// The submission.
    pub id: uuid::Uuid,
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
        id: uuid::Uuid,
        #[diesel(sql_type = Text)]
        state: String,
        #[diesel(sql_type = BigInt)]
        attempts: i64,
    }
    let rows: Vec<Row> = diesel::sql_query(
        "WITH waiting AS (
             SELECT s.id, s.state, s.updated_at,
                    CASE s.state WHEN 'queued' THEN $1 ELSE $2 END AS queue
             FROM item_submissions s
             WHERE s.state IN ('queued', 'persisted')
               AND s.updated_at < now() - make_interval(secs => $3))
         SELECT w.id, w.state,
                (SELECT count(*) FROM apalis.jobs j
                  WHERE j.job_type = w.queue AND j.idempotency_key LIKE w.id::text || '#%') AS attempts
         FROM waiting w
         WHERE NOT EXISTS (
               SELECT 1 FROM apalis.jobs j
               WHERE j.job_type = w.queue AND j.idempotency_key LIKE w.id::text || '#%'
                 AND j.status IN ('Pending', 'Queued', 'Running'))
         ORDER BY w.updated_at
         LIMIT $4",
    )
    .bind::<Text, _>(Queue::Persist.name())
    .bind::<Text, _>(Queue::Move.name())
    .bind::<Double, _>(stuck_after.as_secs_f64())
    .bind::<BigInt, _>(limit)
    .load(conn)
    .await?;
    Ok(rows
        .into_iter()
        .map(|r| StalledSubmission {
            id: r.id,
            queue: if r.state == "queued" {
                Queue::Persist
            } else {
                Queue::Move
            },
            attempts: u32::try_from(r.attempts).unwrap_or(u32::MAX),
        })
        .collect())
}
