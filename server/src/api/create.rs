use chrono::Utc;
use upload_db::models::{NewUpload, UploadRow};
use upload_domain::{
    Actor, Caller, ContentType, FileName, IdempotencyKey, PartPlan, Stage, StageStatus,
    TypeRejection, UploadId, UploadState,
};
use upload_proto::v1 as pb;
use upload_storage::{MultipartUpload, StorageKey};

use crate::error::ApiError;
use crate::snapshot::UploadSnapshot;
use crate::state::AppState;

/// The upload as every RPC shows it.
async fn shown(state: &AppState, caller: &Caller, id: UploadId) -> Result<pb::Upload, ApiError> {
    UploadSnapshot::load(state, caller, id)
        .await?
        .upload(state)
        .await
}

/// The upload the caller created with `key` before, if any; refused when that
/// upload was for something else than this request.
async fn created_before(
    state: &AppState,
    caller: &Caller,
    key: &IdempotencyKey,
    same_request: &impl Fn(&UploadRow) -> bool,
) -> Result<Option<UploadId>, ApiError> {
    let mut conn = state.pool.get().await.map_err(upload_db::DbError::from)?;
    let Some(row) =
        upload_db::uploads::find_by_idempotency_key(&mut conn, &caller.seller_id, key.as_str())
            .await?
    else {
        return Ok(None);
    };
    if same_request(&row) {
        Ok(Some(row.id))
    } else {
        Err(ApiError::UploadKeyReused {
            key: key.as_str().to_owned(),
            upload: row.id,
        })
    }
}

/// CreateUpload: validate, start the multipart upload, record it. With an
/// idempotency key, a retry gets the upload the key created.
pub async fn handle_create_upload(
    state: &AppState,
    caller: &Caller,
    req: pb::CreateUploadRequest,
) -> Result<pb::Upload, ApiError> {
    let file_name: FileName = req.file_name.parse()?;
    let content_type: ContentType = req.content_type.parse()?;
    state
        .policy
        .allowed_types
        .admit(
            file_name.as_str(),
            content_type.as_str(),
            state.policy.allow_software,
        )
        .map_err(|refused| match refused {
            TypeRejection::NotAllowed { content_type } => ApiError::TypeNotAccepted(content_type),
            software @ TypeRejection::Software { .. } => {
                ApiError::SoftwareNotAccepted(software.to_string())
            }
            other => ApiError::NameMismatch(other.to_string()),
        })?;
    let limit = state.size_limit(caller.group);
    if req.size_bytes > limit {
        return Err(ApiError::OverSizeLimit {
            size: req.size_bytes,
            group: caller.group,
            limit,
        });
    }
    let requested = (req.part_size_bytes != 0).then_some(req.part_size_bytes);
    let plan = PartPlan::new(
        req.size_bytes,
        requested,
        state.policy.default_part_size_bytes,
    )?;
    let part_checksum = crate::convert::part_checksum_from(req.part_checksum)?;
    let idempotency_key = if req.idempotency_key.is_empty() {
        None
    } else {
        Some(req.idempotency_key.parse::<IdempotencyKey>()?)
    };
    let same_request = |row: &UploadRow| {
        row.file_name == file_name.as_str()
            && row.declared_content_type == content_type.as_str()
            && u64::try_from(row.declared_size).ok() == Some(plan.size())
            && u64::try_from(row.part_size).ok() == Some(plan.part_size())
            && row.part_checksum == part_checksum
    };
    // A retry: the upload this key made, as it is now.
    if let Some(key) = &idempotency_key
        && let Some(id) = created_before(state, caller, key, &same_request).await?
    {
        return shown(state, caller, id).await;
    }

    // Fair use: the unfinished uploads first (a refusal there costs no allowance),
    // then one CreateUpload from the caller's minute. A retry above is neither.
    let open = {
        let mut conn = state.pool.get().await.map_err(upload_db::DbError::from)?;
        upload_db::uploads::count_unfinished(&mut conn, &caller.seller_id).await?
    };
    let max = state.fair_use.max_open_uploads();
    if open >= max {
        return Err(ApiError::TooManyOpenUploads { open, max });
    }
    state.fair_use.take_create(&caller.seller_id)?;

    let id = UploadId::new();
    let key = StorageKey::Temp {
        owner: &caller.seller_id,
        upload: id,
    };
    let temp_key = key.key();
    let store_upload_id = state
        .store
        .create_multipart(&key, content_type.as_str(), part_checksum)
        .await?;

    let expires_at = Utc::now()
        + chrono::Duration::from_std(state.policy.upload_ttl)
            .map_err(|e| ApiError::Internal(e.to_string()))?;
    let new = NewUpload {
        id,
        owner_id: &caller.seller_id,
        owner_group: caller.group,
        file_name: file_name.as_str(),
        declared_size: i64::try_from(plan.size())
            .map_err(|e| ApiError::invalid("size_bytes", e.to_string()))?,
        declared_content_type: content_type.as_str(),
        temp_key: &temp_key,
        store_upload_id: &store_upload_id,
        part_size: i64::try_from(plan.part_size())
            .map_err(|e| ApiError::invalid("part_size_bytes", e.to_string()))?,
        part_count: i32::try_from(plan.part_count())
            .map_err(|e| ApiError::invalid("part_size_bytes", e.to_string()))?,
        state: UploadState::Created,
        expires_at,
        idempotency_key: idempotency_key.as_ref().map(IdempotencyKey::as_str),
        part_checksum,
    };
    let recorded = async {
        let mut conn = state.pool.get().await.map_err(upload_db::DbError::from)?;
        upload_db::uploads::insert(&mut conn, &new, &Actor::caller(caller)).await?;
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
        Ok::<_, ApiError>(())
    }
    .await;
    match recorded {
        Ok(()) => {
            state.metrics.upload_created(caller.group);
            shown(state, caller, id).await
        }
        Err(e) => {
            // Leave nothing behind: the multipart upload has no row to belong to.
            let multipart = MultipartUpload::of(&caller.seller_id, id, &store_upload_id);
            if let Err(abort) = state.store.abort_multipart(&multipart).await {
                tracing::warn!(error = %abort, %temp_key, "could not abort orphan multipart upload; lifecycle rules will");
            }
            // Two calls with one key at once: the other recorded it first.
            if let Some(key) = &idempotency_key
                && let Some(id) = created_before(state, caller, key, &same_request).await?
            {
                return shown(state, caller, id).await;
            }
            Err(e)
        }
    }
}
