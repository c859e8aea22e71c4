//! A submission's life after SubmitItem: the persist step, how it ends (stored or
//! failed, with the seller told in the same transaction), and its reads.

use chrono::Utc;
use diesel::prelude::*;
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use upload_domain::{
    Actor, Failure, SubmissionEvent, SubmissionId, SubmissionState, UploadEvent, UploadState,
};

use crate::DbError;
use crate::jobs::{self, Queue, SubmissionJob};
use crate::models::{NewNotification, SubmissionFileRow, SubmissionRow};
use crate::schema::{item_submissions, items, submission_files};

/// Moves submission `id` from `expected` by `event`, only if it is still there,
/// and records the change in its history, in one transaction.
pub async fn transition(
    conn: &mut AsyncPgConnection,
    id: SubmissionId,
    expected: SubmissionState,
    event: SubmissionEvent,
    failure: Option<&Failure>,
    by: &Actor,
) -> Result<bool, DbError> {
    let Ok(next) = expected.apply(event) else {
        return Ok(false);
    };
    let detail = failure.map(crate::history::failure_detail);
    conn.transaction::<_, DbError, _>(async move |conn| {
        let updated = diesel::update(
            item_submissions::table
                .filter(item_submissions::id.eq(id))
                .filter(item_submissions::state.eq(expected)),
        )
        .set((
            item_submissions::state.eq(next),
            item_submissions::updated_at.eq(Utc::now()),
            item_submissions::failure_code.eq(failure.map(|f| f.code)),
            item_submissions::failure_message.eq(failure.map(|f| f.message.as_str())),
        ))
        .execute(conn)
        .await?;
        if updated != 1 {
            return Ok(false);
        }
        crate::history::record_submission(
            conn,
            id,
            Some(expected),
            next,
            event.into(),
            by,
            detail.as_deref(),
        )
        .await?;
        Ok(true)
    })
    .await
}

/// The persist step: saves a queued submission's fields into its item (unless a
/// later submission's are already there) and queues the move, in one transaction.
/// Running it again changes nothing and queues nothing new. Returns the
/// submission's state, or None when it does not exist.
pub async fn persist(
    conn: &mut AsyncPgConnection,
    id: SubmissionId,
    by: &Actor,
) -> Result<Option<SubmissionState>, DbError> {
    conn.transaction::<_, DbError, _>(async move |conn| {
        let Some(sub) = lock(conn, id).await? else {
            return Ok(None);
        };
        match sub.state {
            SubmissionState::Queued => {
                diesel::update(
                    items::table.find(sub.item_id).filter(
                        items::fields_seq
                            .is_null()
                            .or(items::fields_seq.lt(sub.seq)),
                    ),
                )
                .set((
                    items::title.eq(&sub.title),
                    items::description.eq(&sub.description),
                    items::fields_seq.eq(sub.seq),
                    items::updated_at.eq(Utc::now()),
                ))
                .execute(conn)
                .await?;
                transition(conn, id, sub.state, SubmissionEvent::Persisted, None, by).await?;
                queue_move(conn, id).await?;
                Ok(Some(SubmissionState::Persisted))
            }
            SubmissionState::Persisted => {
                // Persisted before, perhaps without the move's row committing: a
                // move is queued only when none is live.
                queue_move(conn, id).await?;
                Ok(Some(sub.state))
            }
            settled => Ok(Some(settled)),
        }
    })
    .await
}

/// Queues the move's next attempt unless one is live (after an operator's retry,
/// earlier attempts' rows are there already).
async fn queue_move(conn: &mut AsyncPgConnection, id: SubmissionId) -> Result<(), DbError> {
    jobs::enqueue_next(conn, Queue::Move, &id.to_string(), |attempt| {
        SubmissionJob {
            submission_id: id,
            attempt,
        }
    })
    .await?;
    Ok(())
}

/// Marks a persisted submission stored and tells the seller, in one transaction.
/// Returns false when it was not persisted (stored before, or failed).
pub async fn finish(
    conn: &mut AsyncPgConnection,
    id: SubmissionId,
    notification: NewNotification,
    deliver: bool,
    by: &Actor,
) -> Result<bool, DbError> {
    conn.transaction::<_, DbError, _>(async move |conn| {
        let moved = transition(
            conn,
            id,
            SubmissionState::Persisted,
            SubmissionEvent::Stored,
            None,
            by,
        )
        .await?;
        if moved {
            crate::notifications::record(conn, &notification, deliver).await?;
        }
        Ok(moved)
    })
    .await
}

/// Fails a submission that has not settled: records why, gives its uploads that
/// were not stored back to the seller (`ready` again, their temp objects untouched)
/// and tells the seller, in one transaction. Returns false when it had settled.
pub async fn fail(
    conn: &mut AsyncPgConnection,
    id: SubmissionId,
    failure: &Failure,
    notification: NewNotification,
    deliver: bool,
    by: &Actor,
) -> Result<bool, DbError> {
    let failure = failure.clone();
    conn.transaction::<_, DbError, _>(async move |conn| {
        let Some(sub) = lock(conn, id).await? else {
            return Ok(false);
        };
        if !transition(
            conn,
            id,
            sub.state,
            SubmissionEvent::Failed,
            Some(&failure),
            by,
        )
        .await?
        {
            return Ok(false);
        }
        for file in files_of(conn, id).await? {
            // Uploads already stored stay stored: their versions exist.
            let _released = crate::uploads::transition(
                conn,
                file.upload_id,
                UploadState::Submitted,
                UploadEvent::Released,
                None,
                by,
            )
            .await?;
        }
        crate::notifications::record(conn, &notification, deliver).await?;
        Ok(true)
    })
    .await
}

async fn lock(
    conn: &mut AsyncPgConnection,
    id: SubmissionId,
) -> Result<Option<SubmissionRow>, DbError> {
    Ok(item_submissions::table
        .find(id)
        .for_update()
        .select(SubmissionRow::as_select())
        .first(conn)
        .await
        .optional()?)
}

find_by_key!(
    /// One submission.
    find,
    item_submissions,
    SubmissionId,
    SubmissionRow
);

/// A submission's uploads, in the order given.
pub async fn files_of(
    conn: &mut AsyncPgConnection,
    submission: SubmissionId,
) -> Result<Vec<SubmissionFileRow>, DbError> {
    Ok(submission_files::table
        .filter(submission_files::submission_id.eq(submission))
        .order(submission_files::position.asc())
        .select(SubmissionFileRow::as_select())
        .load(conn)
        .await?)
}
