//! The history of uploads and submissions: one row per change, written by the
//! guarded transitions in the transaction that makes the change (and by an
//! operator's action, even when the state stays), and read back in order.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use upload_domain::{
    Actor, ChangeCause, Failure, Md5Digest, ObjectChange, SubmissionId, SubmissionState,
    UnknownWord, UploadId, UploadState,
};

use crate::DbError;
use crate::schema::{object_events, submission_events, upload_events};

/// A change of one subject's state, as recorded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change<S> {
    /// Where it was (None when it was created).
    pub from: Option<S>,
    /// Where it went (the same as `from` for an action that changed no state).
    pub to: S,
    /// Why.
    pub cause: ChangeCause,
    /// The job's attempt, when a job made it.
    pub attempt: Option<i32>,
    /// Who: the actor's name.
    pub actor: String,
    /// The failure, or what an operator's action did.
    pub detail: Option<String>,
    /// When.
    pub at: DateTime<Utc>,
}

/// A change as PostgreSQL aggregates it into JSON (column names as keys).
#[derive(serde::Deserialize)]
pub(crate) struct JsonChange {
    from_state: Option<String>,
    to_state: String,
    cause: String,
    attempt: Option<i32>,
    actor: String,
    detail: Option<String>,
    at: DateTime<Utc>,
}

impl JsonChange {
    /// The change, its words parsed (an unknown one fails, as a column read would).
    pub(crate) fn parse<S: std::str::FromStr<Err = UnknownWord>>(
        self,
    ) -> Result<Change<S>, UnknownWord> {
        Ok(Change {
            from: self.from_state.map(|s| s.parse()).transpose()?,
            to: self.to_state.parse()?,
            cause: self.cause.parse()?,
            attempt: self.attempt,
            actor: self.actor,
            detail: self.detail,
            at: self.at,
        })
    }
}

/// The detail a failure leaves in the history: its code and message.
pub fn failure_detail(failure: &Failure) -> String {
    format!("{}: {}", failure.code, failure.message)
}

/// Records a change of upload `id`.
pub async fn record_upload(
    conn: &mut AsyncPgConnection,
    id: UploadId,
    from: Option<UploadState>,
    to: UploadState,
    cause: ChangeCause,
    by: &Actor,
    detail: Option<&str>,
) -> Result<(), DbError> {
    diesel::insert_into(upload_events::table)
        .values((
            upload_events::upload_id.eq(id),
            upload_events::from_state.eq(from),
            upload_events::to_state.eq(to),
            upload_events::cause.eq(cause),
            upload_events::attempt.eq(by.attempt()),
            upload_events::actor.eq(by.to_string()),
            upload_events::detail.eq(detail),
        ))
        .execute(conn)
        .await?;
    Ok(())
}

/// The id of upload `id`'s latest history row: the occasion of what a
/// notification about the change just recorded announces.
pub async fn latest_upload_event(
    conn: &mut AsyncPgConnection,
    id: UploadId,
) -> Result<i64, DbError> {
    diesel::QueryDsl::select(
        upload_events::table.filter(upload_events::upload_id.eq(id)),
        diesel::dsl::max(upload_events::id),
    )
    .first::<Option<i64>>(conn)
    .await?
    .ok_or_else(|| DbError::Corrupt(format!("upload {id} has no history")))
}

/// Records a change of stored object `md5`; returns its row's id (the occasion
/// of what its sellers are told).
pub async fn record_object(
    conn: &mut AsyncPgConnection,
    md5: Md5Digest,
    change: ObjectChange,
    by: &Actor,
    detail: Option<&str>,
) -> Result<i64, DbError> {
    Ok(diesel::insert_into(object_events::table)
        .values((
            object_events::md5_hex.eq(md5),
            object_events::cause.eq(change),
            object_events::actor.eq(by.to_string()),
            object_events::detail.eq(detail),
        ))
        .returning(object_events::id)
        .get_result(conn)
        .await?)
}

/// Records a change of submission `id`.
pub async fn record_submission(
    conn: &mut AsyncPgConnection,
    id: SubmissionId,
    from: Option<SubmissionState>,
    to: SubmissionState,
    cause: ChangeCause,
    by: &Actor,
    detail: Option<&str>,
) -> Result<(), DbError> {
    diesel::insert_into(submission_events::table)
        .values((
            submission_events::submission_id.eq(id),
            submission_events::from_state.eq(from),
            submission_events::to_state.eq(to),
            submission_events::cause.eq(cause),
            submission_events::attempt.eq(by.attempt()),
            submission_events::actor.eq(by.to_string()),
            submission_events::detail.eq(detail),
        ))
        .execute(conn)
        .await?;
    Ok(())
}

type Columns<S> = (
    Option<S>,
    S,
    ChangeCause,
    Option<i32>,
    String,
    Option<String>,
    DateTime<Utc>,
);

fn change<S>((from, to, cause, attempt, actor, detail, at): Columns<S>) -> Change<S> {
    Change {
        from,
        to,
        cause,
        attempt,
        actor,
        detail,
        at,
    }
}

/// Upload `id`'s history, oldest first.
pub async fn of_upload(
    conn: &mut AsyncPgConnection,
    id: UploadId,
) -> Result<Vec<Change<UploadState>>, DbError> {
    let rows: Vec<Columns<UploadState>> = upload_events::table
        .filter(upload_events::upload_id.eq(id))
        .order(upload_events::id)
        .select((
            upload_events::from_state,
            upload_events::to_state,
            upload_events::cause,
            upload_events::attempt,
            upload_events::actor,
            upload_events::detail,
            upload_events::at,
        ))
        .load(conn)
        .await?;
    Ok(rows.into_iter().map(change).collect())
}

/// Submission `id`'s history, oldest first.
pub async fn of_submission(
    conn: &mut AsyncPgConnection,
    id: SubmissionId,
) -> Result<Vec<Change<SubmissionState>>, DbError> {
    let rows: Vec<Columns<SubmissionState>> = submission_events::table
        .filter(submission_events::submission_id.eq(id))
        .order(submission_events::id)
        .select((
            submission_events::from_state,
            submission_events::to_state,
            submission_events::cause,
            submission_events::attempt,
            submission_events::actor,
            submission_events::detail,
            submission_events::at,
        ))
        .load(conn)
        .await?;
    Ok(rows.into_iter().map(change).collect())
}
