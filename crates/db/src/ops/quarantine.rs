//! An operator's word on a quarantined upload: released (the scanner was wrong;
//! the upload's verdict becomes a release naming the operator, the reason and the
//! finding overridden, the file goes on to processing and the seller is told) or
//! confirmed (the file goes when its days in quarantine end, and can no longer be
//! released). The objects are moved by the caller, in an order that a crash cannot
//! turn into a lost or leaked file (see `upload_server::admin`); here the decision
//! is recorded.

use diesel::prelude::*;
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use upload_domain::{
    Actor, ChangeCause, NotificationKind, QUARANTINE_DAYS, ScanVerdict, Stage, StageStatus,
    UploadEvent, UploadId, UploadState,
};

use super::{Abort, Done, Refused, enqueue_upload_jobs, lock_upload, settle};
use crate::DbError;
use crate::history::record_upload;
use crate::jobs::Queue;
use crate::models::NewNotification;
use crate::schema::{upload_events, upload_scans};
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

/// Releases quarantined upload `id`, whose file the caller has copied back to the
/// temp bucket: quarantined → processing, its verdict a release (the operator,
/// `reason`, the finding overridden; the signature version stays the one that
/// found it), its metadata and preview run (again), the seller told
/// (`upload.released`). Refused when it is not quarantined or its quarantine was
/// confirmed.
pub async fn release(
    conn: &mut AsyncPgConnection,
    id: UploadId,
    by: &Actor,
    reason: &str,
) -> Result<Done, DbError> {
    let reason = reason.to_owned();
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
            let occasion = crate::history::latest_upload_event(conn, id).await?;
            let overridden: Option<String> = diesel::update(upload_scans::table.find(id))
                .set((
                    upload_scans::verdict.eq(ScanVerdict::Released),
                    upload_scans::released_by.eq(by.to_string()),
                    upload_scans::release_reason.eq(&reason),
                    upload_scans::released_signature.eq(upload_scans::signature),
                    // Back in temp: no longer in quarantine.
                    upload_scans::quarantine_key.eq(None::<String>),
                ))
                .returning(upload_scans::signature)
                .get_result(conn)
                .await
                .optional()?
                .flatten();
            if overridden.is_none() {
                return Err(DbError::Corrupt(format!(
                    "quarantined upload {id} has no finding on record"
                ))
                .into());
            }
            // Skipped when it was quarantined by its first scan, done when a
            // re-scan quarantined it once ready: either way both run now.
            for stage in Stage::PROCESSING {
                crate::progress::set(conn, id, stage, StageStatus::Pending, 0, 0, "released")
                    .await?;
            }
            let queues: Vec<Queue> = Stage::PROCESSING
                .iter()
                .map(|&s: &Stage| Queue::of_stage(s))
                .collect();
            let queued = enqueue_upload_jobs(conn, id, &queues).await?;
            let row = crate::uploads::find(conn, id)
                .await?
                .ok_or_else(|| DbError::Corrupt(format!("upload {id} vanished under its lock")))?;
            let deliver = crate::notifications::upload_told_by_webhook(conn, id).await?;
            let notification = NewNotification::about_upload(
                &row,
                NotificationKind::UploadReleased,
                format!(
                    "{} was checked by our staff and found safe; it is being processed",
                    row.file_name
                ),
                serde_json::json!({
                    "file_name": row.file_name,
                    "overridden_signature": overridden,
                    "reason": reason,
                }),
            )
            .on_occasion(occasion);
            crate::notifications::record(conn, &notification, deliver).await?;
            Ok(format!(
                "upload {id}: quarantined -> {next}; queued {}; the seller is told",
                queued.join(", ")
            ))
        })
        .await,
    )
}

/// Records that an operator confirmed quarantined upload `id`'s verdict: it can no
/// longer be released, and its file goes when its days in quarantine end (the
/// caller removes any copy of it outside quarantine). Refused when it is not
/// quarantined or was confirmed before.
pub async fn confirm(
    conn: &mut AsyncPgConnection,
    id: UploadId,
    by: &Actor,
) -> Result<Done, DbError> {
    settle(
        conn.transaction::<_, Abort, _>(async move |conn| {
            lock_undecided(conn, id).await?;
            let detail =
                format!("the file is deleted when its {QUARANTINE_DAYS} days in quarantine end");
            record_upload(
                conn,
                id,
                Some(UploadState::Quarantined),
                UploadState::Quarantined,
                ChangeCause::QuarantineConfirmed,
                by,
                Some(&detail),
            )
            .await?;
            Ok(format!("upload {id} (quarantined): confirmed; {detail}"))
        })
        .await,
    )
}
