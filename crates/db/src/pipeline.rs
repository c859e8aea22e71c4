//! The steps that move an upload along the processing pipeline, each one
//! transaction: the state change and the job it starts commit together.

use diesel_async::{AsyncConnection, AsyncPgConnection};
use upload_domain::{Stage, StageStatus, UploadEvent, UploadId, UploadState};

use crate::DbError;
use crate::jobs::{self, Queue, UploadJob};
use crate::uploads::{self, Transition};

/// Records that the store assembled the upload (`uploading` → `uploaded`) and
/// enqueues its first job. Only the caller that wins the guarded transition
/// enqueues; everyone else gets [`Transition::Lost`] and changes nothing.
pub async fn record_completion(
    conn: &mut AsyncPgConnection,
    id: UploadId,
    size: u64,
) -> Result<Transition, DbError> {
    conn.transaction::<_, DbError, _>(async move |conn| {
        let moved = uploads::transition(
            conn,
            id,
            UploadState::Uploading,
            UploadEvent::Completed,
            None,
        )
        .await?;
        if !matches!(moved, Ok(Transition::Applied(_))) {
            return Ok(Transition::Lost);
        }
        crate::progress::set(
            conn,
            id,
            Stage::Upload,
            StageStatus::Done,
            size,
            size,
            "assembled",
        )
        .await?;
        crate::progress::set(
            conn,
            id,
            Stage::Hash,
            StageStatus::Pending,
            0,
            size,
            "queued",
        )
        .await?;
        jobs::enqueue(conn, Queue::Metadata, &UploadJob::first(id), None).await?;
        Ok(Transition::Applied(UploadState::Uploaded))
    })
    .await
}
