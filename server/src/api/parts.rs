//! ListUploadedParts: what a resuming client still has to send.

use upload_assembly::{inspect_parts, record_upload_progress};
use upload_domain::{Caller, UploadId, UploadState};
use upload_proto::v1 as pb;
use upload_storage::StoredPart;

use crate::error::ApiError;
use crate::state::AppState;

/// Handles ListUploadedParts: the parts the store holds as signed, and the rest.
pub async fn handle_list_uploaded_parts(
    state: &AppState,
    caller: &Caller,
    id: UploadId,
) -> Result<pb::ListUploadedPartsResponse, ApiError> {
    let row = state.owned_upload(caller, id).await?;
    let plan = row.plan()?;
    let to_pb = |p: &StoredPart| pb::UploadedPart {
        part_number: p.part_number,
        size_bytes: p.size,
        etag: p.etag.clone(),
        checksum_sha256: p
            .checksum_sha256
            .map(|d| d.as_bytes().to_vec())
            .unwrap_or_default(),
    };
    if !row.state.accepts_parts() {
        return match row.state {
            UploadState::Aborted | UploadState::Expired => Err(ApiError::UploadEnded {
                upload: id,
                state: row.state,
            }),
            // Completed: every part is in the object; nothing is left to send.
            _ => Ok(pb::ListUploadedPartsResponse {
                parts: plan
                    .parts()
                    .map(|n| pb::UploadedPart {
                        part_number: n.get(),
                        size_bytes: plan.part_len(n),
                        etag: String::new(),
                        checksum_sha256: Vec::new(),
                    })
                    .collect(),
                missing_part_numbers: Vec::new(),
                part_size_bytes: plan.part_size(),
                part_count: plan.part_count(),
            }),
        };
    }
    let report = inspect_parts(&state.pool, &state.store, &row)
        .await?
        .ok_or(ApiError::PartsGone(id))?;
    record_upload_progress(&state.pool, &row, &plan, &report).await;
    Ok(pb::ListUploadedPartsResponse {
        parts: report.matched.iter().map(to_pb).collect(),
        missing_part_numbers: report.to_send(),
        part_size_bytes: plan.part_size(),
        part_count: plan.part_count(),
    })
}
