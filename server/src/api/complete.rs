use upload_db::uploads::Transition;
use upload_domain::{Caller, UploadId, UploadState};
use upload_proto::v1 as pb;
use upload_storage::{StorageKey, StoreError};

use super::parts::{record_upload_progress, stored_vs_signed};
use super::watch;
use crate::error::ApiError;
use crate::state::AppState;

fn list(numbers: &[u32]) -> String {
    let shown: Vec<String> = numbers.iter().take(20).map(u32::to_string).collect();
    let more = numbers.len().saturating_sub(shown.len());
    if more > 0 {
        format!("{} and {more} more", shown.join(", "))
    } else {
        shown.join(", ")
    }
}

/// CompleteUpload: check the stored parts against the signed ones, assemble the
/// object, then in one transaction move the upload to `uploaded` and enqueue its
/// first job. A second call (or a racing one) finds the upload completed and
/// returns it unchanged; the guarded transition means only one call enqueues.
pub async fn handle_complete_upload(
    state: &AppState,
    caller: &Caller,
    id: UploadId,
) -> Result<pb::Upload, ApiError> {
    let row = state.owned_upload(caller, id).await?;
    let current = row.state()?;
    match current {
        UploadState::Created | UploadState::Uploading => {}
        UploadState::Aborted | UploadState::Expired => {
            return Err(ApiError::FailedPrecondition(format!(
                "upload {id} is {current} and cannot be completed; start a new upload"
            )));
        }
        _ => return Ok(watch::snapshot(state, row).await?.0),
    }
    let plan = row.plan()?;

    // When the store no longer has the multipart upload, a racing or interrupted
    // completion may have assembled it already: that is accepted below only if the
    // object is really there.
    if let Some(report) =
        stored_vs_signed(state, id, &row.temp_key, &row.store_upload_id, &plan).await?
    {
        record_upload_progress(state, id, &plan, &report).await;
        if !report.mismatched.is_empty() {
            return Err(ApiError::FailedPrecondition(format!(
                "parts {} in the store differ from what was signed for them; sign and send them again",
                list(&report.mismatched)
            )));
        }
        if !report.missing.is_empty() {
            return Err(ApiError::FailedPrecondition(format!(
                "parts {} are not in the store yet; send them, then complete again",
                list(&report.missing)
            )));
        }
        if report.bytes_done() != plan.size() {
            return Err(ApiError::FailedPrecondition(format!(
                "the stored parts add up to {} bytes, not the declared {}",
                report.bytes_done(),
                plan.size()
            )));
        }
        match state
            .store
            .complete_multipart(&row.temp_key, &row.store_upload_id, &report.matched)
            .await
        {
            Ok(()) | Err(StoreError::NotFound(_)) => {}
            Err(StoreError::InvalidPart(_)) => {
                return Err(ApiError::FailedPrecondition(
                    "the store would not assemble the parts: a part that was being sent again broke off, \
                     and the store needs it in full; send again every part you were re-sending, then complete again"
                        .into(),
                ));
            }
            Err(e) => return Err(e.into()),
        }
    }
    let assembled = state
        .store
        .object_size(&StorageKey::UploadObject { key: &row.temp_key })
        .await?;
    if assembled != Some(plan.size()) {
        return Err(ApiError::FailedPrecondition(format!(
            "upload {id} could not be assembled in the store; send the missing parts and complete again"
        )));
    }

    let mut conn = state.pool.get().await.map_err(upload_db::DbError::from)?;
    if upload_db::pipeline::record_completion(&mut conn, id, plan.size()).await? == Transition::Lost
    {
        tracing::debug!(%id, "another call completed the upload first");
    }
    drop(conn);
    let row = state.owned_upload(caller, id).await?;
    match row.state()? {
        UploadState::Aborted | UploadState::Expired => Err(ApiError::FailedPrecondition(format!(
            "upload {id} was {} while completing",
            row.state()?
        ))),
        _ => Ok(watch::snapshot(state, row).await?.0),
    }
}
