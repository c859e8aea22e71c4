use std::collections::HashMap;

use upload_db::models::PartRow;
use upload_domain::{Caller, Md5Digest, PartPlan, Stage, StageStatus, UploadId, UploadState};
use upload_proto::v1 as pb;
use upload_storage::{StoreError, StoredPart};

use crate::error::ApiError;
use crate::state::AppState;

/// The store's parts compared with what was signed.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct PartsReport {
    /// Parts stored exactly as signed, in order.
    pub matched: Vec<StoredPart>,
    /// Parts not stored yet (or never signed).
    pub missing: Vec<u32>,
    /// Parts stored with a body other than the one last signed for them.
    pub mismatched: Vec<u32>,
}

impl PartsReport {
    /// Bytes stored as signed.
    pub fn bytes_done(&self) -> u64 {
        self.matched.iter().map(|p| p.size).sum()
    }
}

/// Compares the store's parts with the signed ones, part by part over the plan.
/// A stored part counts only when its ETag is the hex MD5 that was signed for it
/// and its size is the signed size.
pub fn compare_parts(plan: &PartPlan, signed: &[PartRow], stored: &[StoredPart]) -> PartsReport {
    let signed: HashMap<i32, &PartRow> = signed.iter().map(|p| (p.part_number, p)).collect();
    let stored: HashMap<u32, &StoredPart> = stored.iter().map(|p| (p.part_number, p)).collect();
    let mut report = PartsReport::default();
    for number in plan.parts() {
        let n = number.get();
        let promised = signed.get(&i32::try_from(n).unwrap_or(i32::MAX));
        match (promised, stored.get(&n)) {
            (Some(promised), Some(held)) => {
                let md5_hex = Md5Digest::from_bytes(&promised.content_md5).map(|d| d.to_hex());
                let size_ok = i64::try_from(held.size).ok() == Some(promised.size_bytes);
                if size_ok && md5_hex.as_deref() == Ok(held.etag.as_str()) {
                    report.matched.push((*held).clone());
                } else {
                    report.mismatched.push(n);
                }
            }
            _ => report.missing.push(n),
        }
    }
    report
}

/// Loads the signed parts and the store's parts, and compares them. `None` when the
/// store no longer has the multipart upload (assembled already, or aborted).
pub async fn stored_vs_signed(
    state: &AppState,
    id: UploadId,
    temp_key: &str,
    store_upload_id: &str,
    plan: &PartPlan,
) -> Result<Option<PartsReport>, ApiError> {
    let signed = {
        let mut conn = state.pool.get().await.map_err(upload_db::DbError::from)?;
        upload_db::uploads::signed_parts(&mut conn, id).await?
    };
    match state.store.list_parts(temp_key, store_upload_id).await {
        Ok(stored) => Ok(Some(compare_parts(plan, &signed, &stored))),
        Err(StoreError::NotFound(_)) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

/// Records how many bytes the store holds, for the upload stage of WatchProgress.
pub async fn record_upload_progress(
    state: &AppState,
    id: UploadId,
    plan: &PartPlan,
    report: &PartsReport,
) {
    let done = report.bytes_done();
    let status = if done == plan.size() {
        StageStatus::Done
    } else {
        StageStatus::Running
    };
    let detail = format!(
        "{} of {} parts stored",
        report.matched.len(),
        plan.part_count()
    );
    let result = async {
        let mut conn = state.pool.get().await.map_err(upload_db::DbError::from)?;
        upload_db::progress::set(
            &mut conn,
            id,
            Stage::Upload,
            status,
            done,
            plan.size(),
            &detail,
        )
        .await
    }
    .await;
    if let Err(e) = result {
        tracing::warn!(error = %e, %id, "could not record upload progress");
    }
}

/// ListUploadedParts: what a resuming client still has to send.
pub async fn handle_list_uploaded_parts(
    state: &AppState,
    caller: &Caller,
    id: UploadId,
) -> Result<pb::ListUploadedPartsResponse, ApiError> {
    let row = state.owned_upload(caller, id).await?;
    let plan = row.plan()?;
    let upload_state = row.state()?;
    let to_pb = |p: &StoredPart| pb::UploadedPart {
        part_number: p.part_number,
        size_bytes: p.size,
        etag: p.etag.clone(),
    };
    if !upload_state.accepts_parts() {
        return match upload_state {
            UploadState::Aborted | UploadState::Expired => Err(ApiError::FailedPrecondition(
                format!("upload {id} is {upload_state}; start a new upload"),
            )),
            // Completed: every part is in the object; nothing is left to send.
            _ => Ok(pb::ListUploadedPartsResponse {
                parts: plan
                    .parts()
                    .map(|n| pb::UploadedPart {
                        part_number: n.get(),
                        size_bytes: plan.part_len(n),
                        etag: String::new(),
                    })
                    .collect(),
                missing_part_numbers: Vec::new(),
                part_size_bytes: plan.part_size(),
                part_count: plan.part_count(),
            }),
        };
    }
    let report = stored_vs_signed(state, id, &row.temp_key, &row.store_upload_id, &plan)
        .await?
        .ok_or_else(|| {
            ApiError::FailedPrecondition(format!(
                "the store no longer holds the parts of upload {id}; complete it if it was, or start a new upload"
            ))
        })?;
    record_upload_progress(state, id, &plan, &report).await;
    let mut missing = report.missing.clone();
    missing.extend(&report.mismatched);
    missing.sort_unstable();
    Ok(pb::ListUploadedPartsResponse {
        parts: report.matched.iter().map(to_pb).collect(),
        missing_part_numbers: missing,
        part_size_bytes: plan.part_size(),
        part_count: plan.part_count(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIB: u64 = 1024 * 1024;

    fn signed(n: i32, md5: u8, size: u64) -> PartRow {
        PartRow {
            upload_id: uuid::Uuid::nil(),
            part_number: n,
            content_md5: vec![md5; 16],
            size_bytes: i64::try_from(size).unwrap(),
            signed_at: chrono::Utc::now(),
        }
    }

    fn stored(n: u32, md5: u8, size: u64) -> StoredPart {
        StoredPart {
            part_number: n,
            size,
            etag: Md5Digest::from_bytes(&[md5; 16]).unwrap().to_hex(),
        }
    }

    #[test]
    fn parts_match_only_with_signed_md5_and_size() {
        let plan = PartPlan::new(20 * MIB, Some(5 * MIB), 5 * MIB).unwrap();
        let signed = vec![
            signed(1, 1, 5 * MIB),
            signed(2, 2, 5 * MIB),
            signed(3, 3, 5 * MIB),
        ];
        let stored = vec![
            stored(1, 1, 5 * MIB),
            stored(2, 9, 5 * MIB),
            stored(4, 4, 5 * MIB),
        ];
        let report = compare_parts(&plan, &signed, &stored);
        assert_eq!(report.matched, vec![stored_part(1)]);
        assert_eq!(report.mismatched, vec![2]);
        // Part 3 was signed but not sent; part 4 was sent but never signed.
        assert_eq!(report.missing, vec![3, 4]);
        assert_eq!(report.bytes_done(), 5 * MIB);

        fn stored_part(n: u32) -> StoredPart {
            super::tests::stored(n, 1, 5 * MIB)
        }
    }
}
