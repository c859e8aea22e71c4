//! CompleteUpload: check the stored parts against the signed ones, assemble the
//! object, and record the completion (one transaction with the first job).

use upload_assembly::{Completion, complete_if_assembled, inspect_parts, record_upload_progress};
use upload_domain::{Actor, Caller, UploadId, UploadState};
use upload_proto::v1 as pb;
use upload_storage::{MultipartUpload, StoreError};

use crate::error::ApiError;
use crate::snapshot::UploadSnapshot;
use crate::state::AppState;

/// Handles CompleteUpload. A second call (or a racing one) finds the upload
/// completed and returns it unchanged; the guarded transition means only one call
/// enqueues.
pub async fn handle_complete_upload(
    state: &AppState,
    caller: &Caller,
    id: UploadId,
) -> Result<pb::Upload, ApiError> {
    let row = state.owned_upload(caller, id).await?;
    match row.state {
        UploadState::Created | UploadState::Uploading => {}
        UploadState::Aborted | UploadState::Expired => {
            return Err(ApiError::UploadEnded {
                upload: id,
                state: row.state,
            });
        }
        _ => {
            return UploadSnapshot::load(state, caller, id)
                .await?
                .upload(state)
                .await;
        }
    }
    // Past its deadline an upload is the sweeper's to expire, whatever the store holds.
    if row.expires_at <= chrono::Utc::now() {
        return Err(ApiError::UploadExpired {
            upload: id,
            at: row.expires_at,
        });
    }
    let plan = row.plan()?;

    // When the store no longer has the multipart upload, a racing or interrupted
    // completion may have assembled it already: that is accepted below only if the
    // object is really there.
    if let Some(report) = inspect_parts(&state.pool, &state.store, &row).await? {
        record_upload_progress(&state.pool, &row, &plan, &report).await;
        if !report.mismatched.is_empty() {
            return Err(ApiError::PartsMismatched(report.mismatched));
        }
        if !report.missing.is_empty() {
            return Err(ApiError::PartsMissing(report.missing));
        }
        if report.bytes_done() != plan.size() {
            return Err(ApiError::PartsSizeMismatch {
                stored: report.bytes_done(),
                declared: plan.size(),
            });
        }
        let multipart = MultipartUpload::of(&row.owner_id, id, &row.store_upload_id);
        match state
            .store
            .complete_multipart(&multipart, &report.matched)
            .await
        {
            Ok(()) | Err(StoreError::NotFound(_)) => {}
            Err(StoreError::InvalidPart(_)) => return Err(ApiError::PartResendBrokeOff),
            Err(e) => return Err(e.into()),
        }
    }
    match complete_if_assembled(&state.pool, &state.store, &row, &Actor::caller(caller)).await? {
        Completion::NotAssembled => return Err(ApiError::NotAssembled(id)),
        Completion::AlreadyRecorded => {
            tracing::debug!(%id, "another call completed the upload first");
        }
        Completion::Recorded => {
            let bytes = u64::try_from(row.declared_size).unwrap_or(0);
            state.metrics.upload_completed(row.owner_group, bytes);
        }
    }
    let snapshot = UploadSnapshot::load(state, caller, id).await?;
    match snapshot.state() {
        moved @ (UploadState::Aborted | UploadState::Expired) => Err(ApiError::MovedOn {
            upload: id,
            state: moved,
            what: "it cannot be completed",
        }),
        _ => snapshot.upload(state).await,
    }
}
