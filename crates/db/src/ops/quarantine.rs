//! An operator's word on a quarantined upload: released (the scanner was wrong;
//! the file goes on to processing and the seller is told) or confirmed (the file
//! is deleted now instead of in 4 days). The objects are moved by the caller, in
//! an order that a crash cannot turn into a lost or leaked file (see
//! `upload_server::admin`); here the decision is recorded.

use diesel::prelude::*;
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use upload_domain::{
    Actor, ChangeCause, NotificationKind, Stage, StageStatus, UploadEvent, UploadId, UploadState,
};

use super::{Abort, Done, Refused, enqueue_upload_jobs, lock_upload, settle};
use crate::DbError;
use crate::history::record_upload;
use crate::jobs::{self, Queue};
use crate::models::NewNotification;
use crate::pipeline::PROCESSING_STAGES;
use crate::schema::upload_events;
use crate::uploads::Transition;

/// Locks upload `id`'s row and refuses unless it is quarantined and its
/// quarantine was not confirmed before (its file is gone then).
async fn lock_undecided(conn: &mut AsyncPgConnection, id: UploadId) -> Result<(), Abort> {
    let (state, _) = lock_upload(conn, id).await?;
    if state != UploadState::Quarantined {
        return Err(Abort::Refused(Refused::WrongState {
            what: "upload",
            id: id.to_string(),
            state: state.to_string(),
            needs: "only a quarantined upload is released or confirmed",
        }));
    }
    match confirmed_by(conn, id).await? {
        Some(actor) => Err(Abort::Refused(Refused::Confirmed { id, by: actor })),
        None => Ok(()),
    }
}

/// Who confirmed upload `id`'s quarantine, if anyone did.
async fn confirmed_by(
    conn: &mut AsyncPgConnection,
    id: UploadId,
) -> Result<Option<String>, DbError> {
    Ok(upload_events::table
        .filter(upload_events::upload_id.eq(id))
        .filter(upload_events::cause.eq(ChangeCause::QuarantineConfirmed))
        .select(upload_events::actor)
        .first(conn)
        .await
        .optional()?)
}

/// Checks, without changing anything, that upload `id` can be released or
/// confirmed: quarantined, and not confirmed before (its file is gone then).
pub async fn check_quarantined(
    conn: &mut AsyncPgConnection,
    id: UploadId,
) -> Result<Result<(), Refused>, DbError> {
    let checked = conn
        .transaction::<_, Abort, _>(async move |conn| {
            lock_undecided(conn, id).await?;
            Ok(String::new())
        })
        .await;
    settle(checked).map(|done| done.map(drop))
}

/// True when notifications about upload `id` were queued for a webhook: the
/// seller hears of a release the way they heard of the quarantine.
async fn delivers_webhooks(conn: &mut AsyncPgConnection, id: UploadId) -> Result<bool, DbError> {
    for n in crate::notifications::for_upload(conn, id).await? {
        if jobs::attempts(conn, Queue::Notify, &n.id.to_string())
            .await?
            .next
            > 1
        {
            return Ok(true);
        }
    }
    Ok(false)
}

/// Releases quarantined upload `id`, whose file the caller has copied back to the
/// temp bucket: quarantined → processing, its metadata and preview run (again),
/// the seller told (`upload.released`). Refused when it is not quarantined or its
/// quarantine was confirmed.
pub async fn release(
    conn: &mut AsyncPgConnection,
    id: UploadId,
    by: &Actor,
) -> Result<Done, DbError> {
    settle(
        conn.transaction::<_, Abort, _>(async move |conn| {
            lock_undecided(conn, id).await?;
            let moved = crate::uploads::transition(
                conn,
                id,
                UploadState::Quarantined,
                UploadEvent::QuarantineReleased,
                None,
                by,
            )
            .await?;
            let Ok(Transition::Applied(next)) = moved else {
                return Err(DbError::Corrupt(format!("upload {id} moved under its lock")).into());
            };
            // Skipped when it was quarantined by its first scan, done when a
            // re-scan quarantined it once ready: either way both run now.
            for stage in PROCESSING_STAGES {
                crate::progress::set(conn, id, stage, StageStatus::Pending, 0, 0, "released")
                    .await?;
            }
            let queues: Vec<Queue> = PROCESSING_STAGES
                .iter()
                .map(|&s: &Stage| Queue::of_stage(s))
                .collect();
            let queued = enqueue_upload_jobs(conn, id, &queues).await?;
            let row = crate::uploads::find(conn, id)
                .await?
                .ok_or_else(|| DbError::Corrupt(format!("upload {id} vanished under its lock")))?;
            let deliver = delivers_webhooks(conn, id).await?;
            let notification = NewNotification::about_upload(
                &row,
                NotificationKind::UploadReleased,
                format!(
                    "{} was checked by our staff and found safe; it is being processed",
                    row.file_name
                ),
                serde_json::json!({ "file_name": row.file_name }),
            );
            crate::notifications::record(conn, &notification, deliver).await?;
            Ok(format!(
                "upload {id}: quarantined -> {next}; queued {}; the seller is told",
                queued.join(", ")
            ))
        })
        .await,
    )
}

/// Records that an operator confirmed quarantined upload `id`'s verdict; the
/// caller deletes its file. Refused when it is not quarantined or was confirmed
/// before.
pub async fn confirm(
    conn: &mut AsyncPgConnection,
    id: UploadId,
    by: &Actor,
) -> Result<Done, DbError> {
    settle(
        conn.transaction::<_, Abort, _>(async move |conn| {
            lock_undecided(conn, id).await?;
            let detail = "the file is deleted now";
            record_upload(
                conn,
                id,
                Some(UploadState::Quarantined),
                UploadState::Quarantined,
                ChangeCause::QuarantineConfirmed,
                by,
                Some(detail),
            )
            .await?;
            Ok(format!("upload {id} (quarantined): confirmed; {detail}"))
        })
        .await,
    )
}
