use chrono::Utc;
use upload_db::models::NewUpload;
use upload_domain::{
    Caller, ContentType, FileName, PartPlan, Stage, StageStatus, UploadId, UploadState,
};
use upload_proto::v1 as pb;
use upload_storage::StorageKey;

use crate::convert;
use crate::error::ApiError;
use crate::state::AppState;

/// CreateUpload: validate, start the multipart upload, record it.
pub async fn handle_create_upload(
    state: &AppState,
    caller: &Caller,
    req: pb::CreateUploadRequest,
) -> Result<pb::Upload, ApiError> {
    let file_name: FileName = req.file_name.parse()?;
    let content_type: ContentType = req.content_type.parse()?;
    if !state.policy.allowed_types.allows(content_type.as_str()) {
        return Err(ApiError::InvalidArgument(format!(
            "files of type {content_type} are not accepted on the marketplace; \
             declare one of the accepted types (videos, images, audio, documents, archives)"
        )));
    }
    let limit = state.size_limit(caller.group);
    if req.size_bytes > limit {
        return Err(ApiError::ResourceExhausted(format!(
            "the file is {} bytes but {} sellers may upload at most {} bytes per file",
            req.size_bytes,
            caller.group.as_str(),
            limit
        )));
    }
    let requested = (req.part_size_bytes != 0).then_some(req.part_size_bytes);
    let plan = PartPlan::new(
        req.size_bytes,
        requested,
        state.policy.default_part_size_bytes,
    )?;

    let id = UploadId::new();
    let key = StorageKey::Temp {
        owner: &caller.seller_id,
        upload: id,
    };
    let temp_key = key.key();
    let store_upload_id = state
        .store
        .create_multipart(&key, content_type.as_str())
        .await?;

    let expires_at = Utc::now()
        + chrono::Duration::from_std(state.policy.upload_ttl)
            .map_err(|e| ApiError::Internal(e.to_string()))?;
    let new = NewUpload {
        id: id.as_uuid(),
        owner_id: caller.seller_id.as_str(),
        owner_group: caller.group.as_str(),
        file_name: file_name.as_str(),
        declared_size: i64::try_from(plan.size())
            .map_err(|e| ApiError::InvalidArgument(e.to_string()))?,
        declared_content_type: content_type.as_str(),
        temp_key: &temp_key,
        store_upload_id: &store_upload_id,
        part_size: i64::try_from(plan.part_size())
            .map_err(|e| ApiError::InvalidArgument(e.to_string()))?,
        part_count: i32::try_from(plan.part_count())
            .map_err(|e| ApiError::InvalidArgument(e.to_string()))?,
        state: UploadState::Created.as_str(),
        expires_at,
    };
    let recorded = async {
        let mut conn = state.pool.get().await.map_err(upload_db::DbError::from)?;
        upload_db::uploads::insert(&mut conn, &new).await?;
        upload_db::progress::set(
            &mut conn,
            id,
            Stage::Upload,
            StageStatus::Pending,
            0,
            plan.size(),
            "",
        )
        .await?;
        upload_db::uploads::find(&mut conn, id)
            .await?
            .ok_or_else(|| ApiError::Internal(format!("upload {id} vanished after insert")))
    }
    .await;
    match recorded {
        Ok(row) => convert::upload(&row, &convert::Findings::default()),
        Err(e) => {
            // Leave nothing behind: the multipart upload has no row to belong to.
            if let Err(abort) = state
                .store
                .abort_multipart(&temp_key, &store_upload_id)
                .await
            {
                tracing::warn!(error = %abort, %temp_key, "could not abort orphan multipart upload; lifecycle rules will");
            }
            Err(e)
        }
    }
}
