use upload_db::uploads::{self, FailureNote};
use upload_domain::{Caller, UploadEvent, UploadId, UploadState};
use upload_proto::v1 as pb;

use super::watch;
use crate::error::ApiError;
use crate::state::AppState;

/// AbortUpload: the database says aborted first (so no more parts are signed or
/// completed), then the store frees the parts. If the store call fails, the temp
/// bucket's lifecycle rule aborts the leftover upload within a day.
pub async fn handle_abort_upload(
    state: &AppState,
    caller: &Caller,
    id: UploadId,
) -> Result<pb::Upload, ApiError> {
    let row = state.owned_upload(caller, id).await?;
    let current = row.state()?;
    match current {
        UploadState::Aborted => return Ok(watch::snapshot(state, row).await?.0),
        UploadState::Created | UploadState::Uploading => {}
        other => {
            return Err(ApiError::FailedPrecondition(format!(
                "upload {id} is {other}; only an unfinished upload can be aborted"
            )));
        }
    }
    {
        let mut conn = state.pool.get().await.map_err(upload_db::DbError::from)?;
        let note = FailureNote {
            code: "aborted",
            message: "the upload was aborted by the seller",
        };
        uploads::transition(&mut conn, id, current, UploadEvent::Aborted, Some(note))
            .await?
            .map_err(|e| ApiError::FailedPrecondition(e.to_string()))?;
    }
    let row = state.owned_upload(caller, id).await?;
    if row.state()? == UploadState::Aborted {
        if let Err(e) = state
            .store
            .abort_multipart(&row.temp_key, &row.store_upload_id)
            .await
        {
            tracing::warn!(error = %e, %id, "store abort failed; the lifecycle rule will clean up");
        }
        return Ok(watch::snapshot(state, row).await?.0);
    }
    Err(ApiError::FailedPrecondition(format!(
        "upload {id} became {} while aborting; it can no longer be aborted",
        row.state()?
    )))
}
