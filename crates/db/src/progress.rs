//! Stage progress rows. Every write fires `upload_events` through a trigger.

use diesel::prelude::*;
use diesel::upsert::excluded;
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use upload_domain::{Stage, StageStatus, UploadId};

use crate::DbError;
use crate::models::ProgressRow;
use crate::schema::upload_progress;

/// Sets one stage's progress.
pub async fn set(
    conn: &mut AsyncPgConnection,
    id: UploadId,
    stage: Stage,
    status: StageStatus,
    bytes_done: u64,
    bytes_total: u64,
    detail: &str,
) -> Result<(), DbError> {
    let done = i64::try_from(bytes_done).unwrap_or(i64::MAX);
    let total = i64::try_from(bytes_total).unwrap_or(i64::MAX);
    let upsert = diesel::insert_into(upload_progress::table)
        .values((
            upload_progress::upload_id.eq(id),
            upload_progress::stage.eq(stage),
            upload_progress::status.eq(status),
            upload_progress::bytes_done.eq(done),
            upload_progress::bytes_total.eq(total),
            upload_progress::detail.eq(detail),
        ))
        .on_conflict((upload_progress::upload_id, upload_progress::stage))
        .do_update()
        .set((
            upload_progress::status.eq(excluded(upload_progress::status)),
            upload_progress::bytes_done.eq(excluded(upload_progress::bytes_done)),
            upload_progress::bytes_total.eq(excluded(upload_progress::bytes_total)),
            upload_progress::detail.eq(excluded(upload_progress::detail)),
            upload_progress::updated_at.eq(diesel::dsl::now),
        ));
    // Unchanged progress is not written again: no new updated_at, no wake-up for
    // watchers, and a refused call that looked at the parts leaves no trace.
    diesel::query_dsl::methods::FilterDsl::filter(
        upsert,
        upload_progress::status
            .ne(excluded(upload_progress::status))
            .or(upload_progress::bytes_done.ne(excluded(upload_progress::bytes_done)))
            .or(upload_progress::bytes_total.ne(excluded(upload_progress::bytes_total)))
            .or(upload_progress::detail.ne(excluded(upload_progress::detail))),
    )
    .execute(conn)
    .await?;
    Ok(())
}

/// Every stage's progress for an upload.
pub async fn for_upload(
    conn: &mut AsyncPgConnection,
    id: UploadId,
) -> Result<Vec<ProgressRow>, DbError> {
    Ok(upload_progress::table
        .filter(upload_progress::upload_id.eq(id))
        .select(ProgressRow::as_select())
        .load(conn)
        .await?)
}
