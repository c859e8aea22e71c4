//! Seller notifications: recorded in the same transaction as the state change they
//! announce, then (when a webhook is configured) delivered by the notify job.

use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use upload_domain::{NotificationId, UploadId};

use crate::DbError;
use crate::jobs::{self, NotifyJob, Queue};
use crate::models::{NewNotification, NotificationRow};
use crate::schema::notifications;

/// Records `new` and, when `deliver` is set, enqueues its webhook delivery. Returns
/// the id, or `None` when the upload (or submission) already has a notification of
/// that kind for that occasion (a job that runs twice tells the seller once).
pub async fn record(
    conn: &mut AsyncPgConnection,
    new: &NewNotification,
    deliver: bool,
) -> Result<Option<NotificationId>, DbError> {
    let insert = diesel::insert_into(notifications::table).values(new);
    let id: Option<NotificationId> = if new.submission_id.is_some() {
        insert
            .on_conflict((
                notifications::submission_id,
                notifications::kind,
                notifications::occasion,
            ))
            .do_nothing()
            .returning(notifications::id)
            .get_result(conn)
            .await
            .optional()?
    } else {
        insert
            .on_conflict((
                notifications::upload_id,
                notifications::kind,
                notifications::occasion,
            ))
            .do_nothing()
            .returning(notifications::id)
            .get_result(conn)
            .await
            .optional()?
    };
    if let (Some(id), true) = (id, deliver) {
        jobs::enqueue(conn, Queue::Notify, &NotifyJob::first(id), None).await?;
    }
    Ok(id)
}

find_by_key!(
    /// One notification.
    find,
    notifications,
    NotificationId,
    NotificationRow
);

/// An upload's notifications, oldest first.
pub async fn for_upload(
    conn: &mut AsyncPgConnection,
    upload: UploadId,
) -> Result<Vec<NotificationRow>, DbError> {
    Ok(notifications::table
        .filter(notifications::upload_id.eq(upload))
        .order(notifications::created_at.asc())
        .select(NotificationRow::as_select())
        .load(conn)
        .await?)
}

/// True when notifications about upload `id` were queued for a webhook: an
/// operator's decision about it is told the way its finding was.
pub async fn upload_told_by_webhook(
    conn: &mut AsyncPgConnection,
    id: UploadId,
) -> Result<bool, DbError> {
    for n in for_upload(conn, id).await? {
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

/// Records one delivery attempt: delivered, or the error it met.
pub async fn record_attempt(
    conn: &mut AsyncPgConnection,
    id: NotificationId,
    error: Option<&str>,
) -> Result<(), DbError> {
    let delivered = error.is_none().then(chrono::Utc::now);
    diesel::update(notifications::table.find(id))
        .set((
            notifications::delivery_attempts.eq(notifications::delivery_attempts + 1),
            notifications::last_error.eq(error),
            delivered.map(|at| notifications::delivered_at.eq(at)),
        ))
        .execute(conn)
        .await?;
    Ok(())
}
