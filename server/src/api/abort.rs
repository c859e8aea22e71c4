//! AbortUpload: the database says aborted first (so no more parts are signed or
//! completed), then the store frees the parts. If the store call fails, the temp
//! bucket's lifecycle rule aborts the leftover upload within a day.

use upload_db::uploads;
use upload_domain::{Actor, Caller, Failure, FailureCode, UploadEvent, UploadId, UploadState};
use upload_proto::v1 as pb;
use upload_storage::MultipartUpload;

use crate::error::ApiError;
use crate::snapshot::UploadSnapshot;
use crate::state::AppState;

/// Handles AbortUpload; aborting an aborted upload returns it unchanged.
pub async fn handle_abort_upload(
    state: &AppState,
    caller: &Caller,
    id: UploadId,
) -> Result<pb::Upload, ApiError> {
    let row = state.owned_upload(caller, id).await?;
    match row.state {
        UploadState::Aborted => {
            return UploadSnapshot::load(state, caller, id)
                .await?
                .upload(state)
                .await;
        }
        UploadState::Created | UploadState::Uploading => {}
        other => {
            return Err(ApiError::NotAbortable {
                upload: id,
                state: other,
            });
        }
    }
    {
        let mut conn = state.pool.get().await.map_err(upload_db::DbError::from)?;
        let failure = Failure::of(FailureCode::Aborted);
        uploads::transition(
            &mut conn,
            id,
            row.state,
            UploadEvent::Aborted,
            Some(&failure),
            &Actor::caller(caller),
        )
        .await?
        .map_err(|e| ApiError::Internal(e.to_string()))?;
    }
    let snapshot = UploadSnapshot::load(state, caller, id).await?;
    if snapshot.state() != UploadState::Aborted {
        return Err(ApiError::MovedOn {
            upload: id,
            state: snapshot.state(),
            what: "it can no longer be aborted",
        });
    }
    let multipart = MultipartUpload::of(&row.owner_id, id, &row.store_upload_id);
    if let Err(e) = state.store.abort_multipart(&multipart).await {
        tracing::warn!(error = %e, %id, "store abort failed; the lifecycle rule will clean up");
    }
    snapshot.upload(state).await
}
