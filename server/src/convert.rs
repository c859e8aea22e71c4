//! Domain and database values to their protobuf form. Every enum is matched
//! whole: a new word fails to compile here until it is given its protobuf form.

use prost_types::Timestamp;
use upload_db::history::Change;
use upload_db::models::{MediaRow, MetadataRow, PreviewRow, ProgressRow, ScanRow, UploadRow};
use upload_domain::{
    ChangeCause, Failure, PartChecksum, PreviewKind, ScanVerdict, Stage, StageStatus, Uninspected,
    UploadState,
};
use upload_proto::v1 as pb;

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

/// The protobuf verdict.
pub fn verdict(v: ScanVerdict) -> pb::ScanVerdict {
    match v {
        ScanVerdict::Clean => pb::ScanVerdict::Clean,
        ScanVerdict::Infected => pb::ScanVerdict::Infected,
        ScanVerdict::Unscannable => pb::ScanVerdict::Unscannable,
        ScanVerdict::Released => pb::ScanVerdict::Released,
    }
}

/// What the scanner did not inspect, in protobuf form.
pub fn uninspected(u: Uninspected) -> pb::Uninspected {
    match u {
        Uninspected::EncryptedArchive => pb::Uninspected::EncryptedArchive,
        Uninspected::EncryptedDocument => pb::Uninspected::EncryptedDocument,
        Uninspected::TooLarge => pb::Uninspected::TooLarge,
        Uninspected::TooDeep => pb::Uninspected::TooDeep,
        Uninspected::TooManyFiles => pb::Uninspected::TooManyFiles,
        Uninspected::TooSlow => pb::Uninspected::TooSlow,
        Uninspected::UnreadableFormat => pb::Uninspected::UnreadableFormat,
        Uninspected::Damaged => pb::Uninspected::Damaged,
    }
}

fn preview_kind(k: PreviewKind) -> pb::PreviewKind {
    match k {
        PreviewKind::Thumbnail => pb::PreviewKind::Thumbnail,
        PreviewKind::Clip => pb::PreviewKind::Clip,
    }
}

/// A failure in protobuf form.
pub fn failure(f: Failure) -> pb::Failure {
    pb::Failure {
        code: f.code.to_string(),
        message: f.message,
    }
}

fn unsigned(v: i64) -> u64 {
    u64::try_from(v).unwrap_or(0)
}

/// The scan verdict.
pub fn scan(row: &ScanRow) -> pb::ScanResult {
    pb::ScanResult {
        verdict: verdict(row.verdict) as i32,
        signature: row.signature.clone().unwrap_or_default(),
        scanned_at: Some(timestamp(row.scanned_at)),
        engine_version: row.engine_version.clone().unwrap_or_default(),
        signature_version: row.signature_version.unwrap_or(0),
        uninspected: row
            .uninspected
            .map_or(pb::Uninspected::Unspecified, uninspected) as i32,
        uninspected_reason: row
            .uninspected
            .map(|u| u.sentence().to_owned())
            .unwrap_or_default(),
        released_by: row.released_by.clone().unwrap_or_default(),
        release_reason: row.release_reason.clone().unwrap_or_default(),
        released_signature: row.released_signature.clone().unwrap_or_default(),
    }
}

/// Size, hashes and sniffed type.
pub fn metadata(m: &MetadataRow) -> pb::FileMetadata {
    pb::FileMetadata {
        size_bytes: unsigned(m.size_bytes),
        md5_hex: m.md5.to_hex(),
        sha256_hex: m.sha256.to_hex(),
        sniffed_content_type: m.sniffed_content_type.clone(),
        software: m.software,
    }
}

/// Media facts.
pub fn media(row: &MediaRow) -> pb::MediaInfo {
    let u32_of = |v: Option<i32>| v.and_then(|v| u32::try_from(v).ok()).unwrap_or(0);
    pb::MediaInfo {
        container: row.container.clone(),
        duration_ms: row.duration_ms.map(unsigned).unwrap_or(0),
        bit_rate: row.bit_rate.map(unsigned).unwrap_or(0),
        width: u32_of(row.width),
        height: u32_of(row.height),
        video_codec: row.video_codec.clone().unwrap_or_default(),
        audio_codec: row.audio_codec.clone().unwrap_or_default(),
        frame_rate: row.frame_rate.unwrap_or(0.0),
    }
}

/// One preview, with the URL it is read from.
pub fn preview(row: &PreviewRow, url: &str) -> pb::Preview {
    pb::Preview {
        name: row.name.clone(),
        kind: preview_kind(row.kind) as i32,
        content_type: row.content_type.clone(),
        width: u32::try_from(row.width).unwrap_or(0),
        height: u32::try_from(row.height).unwrap_or(0),
        size_bytes: unsigned(row.size_bytes),
        url: url.to_owned(),
    }
}

/// The upload row's own fields in protobuf form (what the pipeline found is added
/// by the snapshot).
pub fn upload(row: &UploadRow) -> pb::Upload {
    pb::Upload {
        upload_id: row.id.to_string(),
        file_name: row.file_name.clone(),
        size_bytes: unsigned(row.declared_size),
        content_type: row.declared_content_type.clone(),
        state: state(row.state) as i32,
        part_size_bytes: unsigned(row.part_size),
        part_count: u32::try_from(row.part_count).unwrap_or(0),
        created_at: Some(timestamp(row.created_at)),
        updated_at: Some(timestamp(row.updated_at)),
        expires_at: Some(timestamp(row.expires_at)),
        failure: row.failure().map(failure),
        part_checksum: part_checksum(row.part_checksum) as i32,
        ..Default::default()
    }
}

/// How parts are pinned, in protobuf form.
pub fn part_checksum(c: PartChecksum) -> pb::PartChecksum {
    match c {
        PartChecksum::Md5 => pb::PartChecksum::Md5,
        PartChecksum::Sha256 => pb::PartChecksum::Sha256,
    }
}

/// A request's part checksum: unspecified is MD5; a number this server does not
/// know is refused.
pub fn part_checksum_from(raw: i32) -> Result<PartChecksum, crate::error::ApiError> {
    match pb::PartChecksum::try_from(raw) {
        Ok(pb::PartChecksum::Unspecified | pb::PartChecksum::Md5) => Ok(PartChecksum::Md5),
        Ok(pb::PartChecksum::Sha256) => Ok(PartChecksum::Sha256),
        Err(_) => Err(crate::error::ApiError::invalid(
            "part_checksum",
            format!(
                "part_checksum {raw} is unknown: use PART_CHECKSUM_MD5 or PART_CHECKSUM_SHA256"
            ),
        )),
    }
}

/// Stage progress in protobuf form, in pipeline order.
pub fn stages(rows: &[ProgressRow]) -> Vec<pb::StageProgress> {
    let mut out: Vec<pb::StageProgress> = rows
        .iter()
        .map(|r| pb::StageProgress {
            stage: stage(r.stage) as i32,
            status: stage_status(r.status) as i32,
            bytes_done: unsigned(r.bytes_done),
            bytes_total: unsigned(r.bytes_total),
            detail: r.detail.clone(),
        })
        .collect();
    out.sort_by_key(|s| s.stage);
    out
}

/// The protobuf cause.
pub fn cause(c: ChangeCause) -> pb::ChangeCause {
    use pb::ChangeCause as P;
    match c {
        ChangeCause::Created => P::Created,
        ChangeCause::PartSigned => P::PartSigned,
        ChangeCause::Completed => P::Completed,
        ChangeCause::ScanStarted => P::ScanStarted,
        ChangeCause::Scanned => P::Scanned,
        ChangeCause::FoundInfected => P::FoundInfected,
        ChangeCause::ProcessingDone => P::ProcessingDone,
        ChangeCause::Rejected => P::Rejected,
        ChangeCause::Failed => P::Failed,
        ChangeCause::Submitted => P::Submitted,
        ChangeCause::Persisted => P::Persisted,
        ChangeCause::Stored => P::Stored,
        ChangeCause::Released => P::Released,
        ChangeCause::Aborted => P::Aborted,
        ChangeCause::Expired => P::Expired,
        ChangeCause::Retried => P::Retried,
        ChangeCause::Requeued => P::Requeued,
        ChangeCause::Redelivered => P::Redelivered,
        ChangeCause::QuarantineReleased => P::QuarantineReleased,
        ChangeCause::QuarantineConfirmed => P::QuarantineConfirmed,
    }
}

/// One line of an upload's history.
pub fn change(c: &Change<UploadState>) -> pb::UploadChange {
    pb::UploadChange {
        from_state: c.from.map_or(pb::UploadState::Unspecified, state) as i32,
        to_state: state(c.to) as i32,
        cause: cause(c.cause) as i32,
        attempt: c.attempt.and_then(|a| u32::try_from(a).ok()).unwrap_or(0),
        actor: c.actor.clone(),
        detail: c.detail.clone().unwrap_or_default(),
        at: Some(timestamp(c.at)),
    }
}
