//! Domain and database values to their protobuf form.

use prost_types::Timestamp;
use upload_db::models::{MetadataRow, ProgressRow, UploadRow};
use upload_domain::{Stage, StageStatus, UploadState};
use upload_proto::v1 as pb;

use crate::error::ApiError;

/// A timestamp in protobuf form.
pub fn timestamp(t: chrono::DateTime<chrono::Utc>) -> Timestamp {
    Timestamp {
        seconds: t.timestamp(),
        nanos: i32::try_from(t.timestamp_subsec_nanos()).unwrap_or(0),
    }
}

/// The protobuf state.
pub fn state(s: UploadState) -> pb::UploadState {
    use pb::UploadState as P;
    match s {
        UploadState::Created => P::Created,
        UploadState::Uploading => P::Uploading,
        UploadState::Uploaded => P::Uploaded,
        UploadState::Scanning => P::Scanning,
        UploadState::Processing => P::Processing,
        UploadState::Ready => P::Ready,
        UploadState::Submitted => P::Submitted,
        UploadState::Stored => P::Stored,
        UploadState::Quarantined => P::Quarantined,
        UploadState::Rejected => P::Rejected,
        UploadState::Failed => P::Failed,
        UploadState::Aborted => P::Aborted,
        UploadState::Expired => P::Expired,
    }
}

fn stage(s: Stage) -> pb::Stage {
    match s {
        Stage::Upload => pb::Stage::Upload,
        Stage::Scan => pb::Stage::Scan,
        Stage::Hash => pb::Stage::Hash,
        Stage::Metadata => pb::Stage::Metadata,
        Stage::Preview => pb::Stage::Preview,
    }
}

fn stage_status(s: StageStatus) -> pb::StageStatus {
    match s {
        StageStatus::Pending => pb::StageStatus::Pending,
        StageStatus::Running => pb::StageStatus::Running,
        StageStatus::Done => pb::StageStatus::Done,
        StageStatus::Failed => pb::StageStatus::Failed,
        StageStatus::Skipped => pb::StageStatus::Skipped,
    }
}

fn unsigned(v: i64) -> u64 {
    u64::try_from(v).unwrap_or(0)
}

/// An upload in protobuf form.
pub fn upload(row: &UploadRow, metadata: Option<&MetadataRow>) -> Result<pb::Upload, ApiError> {
    let failure = row.failure_code.as_ref().map(|code| pb::Failure {
        code: code.clone(),
        message: row.failure_message.clone().unwrap_or_default(),
    });
    Ok(pb::Upload {
        upload_id: row.id.to_string(),
        file_name: row.file_name.clone(),
        size_bytes: unsigned(row.declared_size),
        content_type: row.declared_content_type.clone(),
        state: state(row.state()?) as i32,
        part_size_bytes: unsigned(row.part_size),
        part_count: u32::try_from(row.part_count).unwrap_or(0),
        created_at: Some(timestamp(row.created_at)),
        updated_at: Some(timestamp(row.updated_at)),
        expires_at: Some(timestamp(row.expires_at)),
        metadata: metadata.map(|m| pb::FileMetadata {
            size_bytes: unsigned(m.size_bytes),
            md5_hex: m.md5_hex.clone(),
            sha256_hex: m.sha256_hex.clone(),
            sniffed_content_type: m.sniffed_content_type.clone(),
        }),
        failure,
    })
}

/// Stage progress in protobuf form, in pipeline order.
pub fn stages(rows: &[ProgressRow]) -> Result<Vec<pb::StageProgress>, ApiError> {
    let mut out = rows
        .iter()
        .map(|r| {
            Ok(pb::StageProgress {
                stage: stage(r.stage()?) as i32,
                status: stage_status(r.status()?) as i32,
                bytes_done: unsigned(r.bytes_done),
                bytes_total: unsigned(r.bytes_total),
                detail: r.detail.clone(),
            })
        })
        .collect::<Result<Vec<_>, ApiError>>()?;
    out.sort_by_key(|s| s.stage);
    Ok(out)
}
