//! What an operator reads: uploads and submissions listed by state, owner and
//! age, and one subject's jobs (from `apalis.jobs`, matched by the id in each
//! job's idempotency key).

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel::sql_types::{Nullable, Text, Timestamptz};
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use upload_domain::{SellerId, SubmissionState, UploadState};

use crate::DbError;
use crate::models::{SubmissionRow, UploadRow};
use crate::schema::{item_submissions, uploads};

/// Which rows to list.
#[derive(Debug, Clone, Default)]
pub struct Filter<S> {
    /// Only in this state.
    pub state: Option<S>,
    /// Only this owner's.
    pub owner: Option<SellerId>,
    /// Only those unchanged since before this time.
    pub unchanged_since: Option<DateTime<Utc>>,
    /// At most this many, least recently changed first.
    pub limit: i64,
}

/// Uploads matching `filter`, least recently changed first.
pub async fn uploads(
    conn: &mut AsyncPgConnection,
    filter: &Filter<UploadState>,
) -> Result<Vec<UploadRow>, DbError> {
    let mut query = uploads::table.into_boxed();
    if let Some(state) = filter.state {
        query = query.filter(uploads::state.eq(state));
    }
    if let Some(owner) = &filter.owner {
        query = query.filter(uploads::owner_id.eq(owner.clone()));
    }
    if let Some(since) = filter.unchanged_since {
        query = query.filter(uploads::updated_at.lt(since));
    }
    Ok(query
        .order(uploads::updated_at.asc())
        .limit(filter.limit)
        .select(UploadRow::as_select())
        .load(conn)
        .await?)
}

/// Submissions matching `filter`, least recently changed first.
pub async fn submissions(
    conn: &mut AsyncPgConnection,
    filter: &Filter<SubmissionState>,
) -> Result<Vec<SubmissionRow>, DbError> {
    let mut query = item_submissions::table.into_boxed();
    if let Some(state) = filter.state {
        query = query.filter(item_submissions::state.eq(state));
    }
    if let Some(owner) = &filter.owner {
        query = query.filter(item_submissions::owner_id.eq(owner.clone()));
    }
    if let Some(since) = filter.unchanged_since {
        query = query.filter(item_submissions::updated_at.lt(since));
    }
    Ok(query
        .order(item_submissions::updated_at.asc())
        .limit(filter.limit)
        .select(SubmissionRow::as_select())
        .load(conn)
        .await?)
}

/// One job row as `apalis.jobs` holds it.
#[derive(Debug, Clone, QueryableByName)]
pub struct JobRow {
    /// The queue.
    #[diesel(sql_type = Text)]
    pub job_type: String,
    /// `<id>#<attempt>`.
    #[diesel(sql_type = Text)]
    pub idempotency_key: String,
    /// Pending, Queued, Running, Done, Failed, Killed.
    #[diesel(sql_type = Text)]
    pub status: String,
    /// When it is (or was) due.
    #[diesel(sql_type = Timestamptz)]
    pub run_at: DateTime<Utc>,
    /// When it finished, if it did.
    #[diesel(sql_type = Nullable<Timestamptz>)]
    pub done_at: Option<DateTime<Utc>>,
    /// What it returned, if it failed.
    #[diesel(sql_type = Nullable<Text>)]
    pub last_result: Option<String>,
}

/// Every job ever queued for the upload, submission or notification `id`, in
/// the order they were due.
pub async fn jobs_of(conn: &mut AsyncPgConnection, id: &str) -> Result<Vec<JobRow>, DbError> {
    Ok(diesel::sql_query(
        "SELECT job_type, idempotency_key, status, run_at, done_at, last_result::text AS last_result
         FROM apalis.jobs WHERE idempotency_key LIKE $1 || '#%' ORDER BY run_at, id",
    )
    .bind::<Text, _>(id)
    .load(conn)
    .await?)
}
