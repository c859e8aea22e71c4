//! The store's parts compared with the signed ones.

use std::collections::HashMap;

use upload_db::DbPool;
use upload_db::models::{PartRow, UploadRow};
use upload_domain::{PartPin, PartPlan, Stage, StageStatus};
use upload_storage::{MultipartUpload, Store, StoreError, StoredPart};

use crate::AssemblyError;

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

    /// Parts still to send: missing or stored with other content, in order.
    pub fn to_send(&self) -> Vec<u32> {
        let mut out = self.missing.clone();
        out.extend(&self.mismatched);
        out.sort_unstable();
        out
    }
}

/// Compares the store's parts with the signed ones, part by part over the plan.
/// A stored part counts only when its size is the signed size and its body is the
/// signed one: a part pinned by SHA-256 by the SHA-256 the store verified and
/// lists; a part pinned by MD5, where the store's ETags are MD5s (`etag_is_md5`),
/// by its ETag. Where they are not (SSE-KMS), the scan compares each MD5-pinned
/// part's bytes with its signed MD5 instead.
pub fn compare_parts(
    plan: &PartPlan,
    signed: &[PartRow],
    stored: &[StoredPart],
    etag_is_md5: bool,
) -> PartsReport {
    let signed: HashMap<i32, &PartRow> = signed.iter().map(|p| (p.part_number, p)).collect();
    let stored: HashMap<u32, &StoredPart> = stored.iter().map(|p| (p.part_number, p)).collect();
    let mut report = PartsReport::default();
    for number in plan.parts() {
        let n = number.get();
        let promised = signed.get(&i32::try_from(n).unwrap_or(i32::MAX));
        match (promised, stored.get(&n)) {
            (Some(promised), Some(held)) => {
                let size_ok = i64::try_from(held.size).ok() == Some(promised.size_bytes);
                let body_ok = match promised.pin() {
                    Ok(PartPin::Md5(md5)) => !etag_is_md5 || md5.to_hex() == held.etag,
                    Ok(PartPin::Sha256(sha256)) => held.checksum_sha256 == Some(sha256),
                    Err(_) => false,
                };
                if size_ok && body_ok {
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

/// Loads the parts signed for `upload` and the store's parts, and compares them.
/// `None` when the store no longer has the multipart upload (assembled already, or
/// aborted).
pub async fn inspect_parts(
    pool: &DbPool,
    store: &Store,
    upload: &UploadRow,
) -> Result<Option<PartsReport>, AssemblyError> {
    let plan = upload.plan()?;
    let signed = {
        let mut conn = pool.get().await.map_err(upload_db::DbError::from)?;
        upload_db::uploads::signed_parts(&mut conn, upload.id).await?
    };
    let multipart = MultipartUpload::of(&upload.owner_id, upload.id, &upload.store_upload_id);
    match store.list_parts(&multipart).await {
        Ok(stored) => Ok(Some(compare_parts(
            &plan,
            &signed,
            &stored,
            store.etag_is_md5(),
        ))),
        Err(StoreError::NotFound(_)) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

/// Records how many bytes the store holds, for the upload stage of WatchProgress.
/// Best effort: progress is shown, never relied on.
pub async fn record_upload_progress(
    pool: &DbPool,
    upload: &UploadRow,
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
        let mut conn = pool.get().await.map_err(upload_db::DbError::from)?;
        upload_db::progress::set(
            &mut conn,
            upload.id,
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
        tracing::warn!(error = %e, upload = %upload.id, "could not record upload progress");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use upload_domain::{Md5Digest, Sha256Digest, UploadId};

    const MIB: u64 = 1024 * 1024;

    fn signed(n: i32, md5: u8, size: u64) -> PartRow {
        PartRow {
            upload_id: UploadId::new(),
            part_number: n,
            content_md5: Some(Md5Digest::from_bytes(&[md5; 16]).unwrap()),
            size_bytes: i64::try_from(size).unwrap(),
            signed_at: chrono::Utc::now(),
            checksum_sha256: None,
        }
    }

    fn signed_sha256(n: i32, sha: u8, size: u64) -> PartRow {
        PartRow {
            content_md5: None,
            checksum_sha256: Some(Sha256Digest::from_array([sha; 32])),
            ..signed(n, 0, size)
        }
    }

    fn stored(n: u32, md5: u8, size: u64) -> StoredPart {
        StoredPart {
            part_number: n,
            size,
            etag: Md5Digest::from_bytes(&[md5; 16]).unwrap().to_hex(),
            checksum_sha256: None,
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
        let held = vec![
            stored(1, 1, 5 * MIB),
            stored(2, 9, 5 * MIB),
            stored(4, 4, 5 * MIB),
        ];
        let report = compare_parts(&plan, &signed, &held, true);
        assert_eq!(report.matched, vec![stored(1, 1, 5 * MIB)]);
        assert_eq!(report.mismatched, vec![2]);
        // Part 3 was signed but not sent; part 4 was sent but never signed.
        assert_eq!(report.missing, vec![3, 4]);
        assert_eq!(report.bytes_done(), 5 * MIB);
        assert_eq!(report.to_send(), vec![2, 3, 4]);
    }

    #[test]
    fn where_etags_are_not_md5s_parts_match_by_size() {
        let plan = PartPlan::new(20 * MIB, Some(5 * MIB), 5 * MIB).unwrap();
        let signed = vec![signed(1, 1, 5 * MIB), signed(2, 2, 5 * MIB)];
        // SSE-KMS: ETags are opaque; part 2's body is checked by the scan.
        let held = vec![stored(1, 7, 5 * MIB), stored(2, 8, 4 * MIB)];
        let report = compare_parts(&plan, &signed, &held, false);
        assert_eq!(report.matched, vec![stored(1, 7, 5 * MIB)]);
        assert_eq!(report.mismatched, vec![2], "a size still has to match");
        assert_eq!(report.missing, vec![3, 4]);
    }

    #[test]
    fn parts_pinned_by_sha256_match_by_the_checksum_the_store_lists() {
        let plan = PartPlan::new(15 * MIB, Some(5 * MIB), 5 * MIB).unwrap();
        let signed = vec![
            signed_sha256(1, 1, 5 * MIB),
            signed_sha256(2, 2, 5 * MIB),
            signed_sha256(3, 3, 5 * MIB),
        ];
        let with = |n: u32, sha: Option<u8>| StoredPart {
            checksum_sha256: sha.map(|b| Sha256Digest::from_array([b; 32])),
            ..stored(n, 0, 5 * MIB)
        };
        // Part 2 holds another checksum, part 3 none at all (the store kept none):
        // neither counts, whatever the ETags say and whether or not they are MD5s.
        let held = vec![with(1, Some(1)), with(2, Some(9)), with(3, None)];
        for etag_is_md5 in [true, false] {
            let report = compare_parts(&plan, &signed, &held, etag_is_md5);
            assert_eq!(report.matched, vec![with(1, Some(1))]);
            assert_eq!(report.mismatched, vec![2, 3]);
            assert!(report.missing.is_empty());
        }
    }
}
