//! Rows as read (`...Row`) and as inserted (`New...`).

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use upload_domain::{
    ItemKind, PartPlan, Stage, StageStatus, SubmissionState, UploadId, UploadState,
};
use uuid::Uuid;

use crate::DbError;
use crate::schema::{
    file_versions, item_files, item_submissions, items, notifications, stored_objects,
    submission_files, upload_media, upload_metadata, upload_parts, upload_previews,
    upload_progress, upload_scans, uploads,
};

/// An upload as stored.
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = uploads)]
#[diesel(check_for_backend(diesel::pg::Pg))]
pub struct UploadRow {
    pub id: Uuid,
    pub owner_id: String,
    pub owner_group: String,
    pub file_name: String,
    pub declared_size: i64,
    pub declared_content_type: String,
    pub temp_key: String,
    pub store_upload_id: String,
    pub part_size: i64,
    pub part_count: i32,
    pub state: String,
    pub failure_code: Option<String>,
    pub failure_message: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    pub completed_at: Option<DateTime<Utc>>,
}

impl UploadRow {
    /// The upload's id.
    pub fn upload_id(&self) -> UploadId {
        UploadId::from(self.id)
    }

    /// The parsed state.
    pub fn state(&self) -> Result<UploadState, DbError> {
        self.state.parse().map_err(DbError::Corrupt)
    }

    /// The part plan fixed at creation.
    pub fn plan(&self) -> Result<PartPlan, DbError> {
        let size =
            u64::try_from(self.declared_size).map_err(|e| DbError::Corrupt(e.to_string()))?;
        let part_size =
            u64::try_from(self.part_size).map_err(|e| DbError::Corrupt(e.to_string()))?;
        let count = u32::try_from(self.part_count).map_err(|e| DbError::Corrupt(e.to_string()))?;
        PartPlan::from_stored(size, part_size, count).ok_or_else(|| {
            DbError::Corrupt(format!("upload {} has an inconsistent part plan", self.id))
        })
    }
}

/// A new upload.
#[derive(Debug, Insertable)]
#[diesel(table_name = uploads)]
pub struct NewUpload<'a> {
    pub id: Uuid,
    pub owner_id: &'a str,
    pub owner_group: &'a str,
    pub file_name: &'a str,
    pub declared_size: i64,
    pub declared_content_type: &'a str,
    pub temp_key: &'a str,
    pub store_upload_id: &'a str,
    pub part_size: i64,
    pub part_count: i32,
    pub state: &'a str,
    pub expires_at: DateTime<Utc>,
}

/// A part as signed.
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = upload_parts)]
#[diesel(check_for_backend(diesel::pg::Pg))]
pub struct PartRow {
    pub upload_id: Uuid,
    pub part_number: i32,
    pub content_md5: Vec<u8>,
    pub size_bytes: i64,
    pub signed_at: DateTime<Utc>,
}

/// One stage's progress.
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = upload_progress)]
#[diesel(check_for_backend(diesel::pg::Pg))]
pub struct ProgressRow {
    pub upload_id: Uuid,
    pub stage: String,
    pub status: String,
    pub bytes_done: i64,
    pub bytes_total: i64,
    pub detail: String,
    pub updated_at: DateTime<Utc>,
}

impl ProgressRow {
    /// The parsed stage.
    pub fn stage(&self) -> Result<Stage, DbError> {
        self.stage.parse().map_err(DbError::Corrupt)
    }

    /// The parsed status.
    pub fn status(&self) -> Result<StageStatus, DbError> {
        self.status.parse().map_err(DbError::Corrupt)
    }
}

/// The facts read from the stored file.
#[derive(Debug, Clone, PartialEq, Eq, Queryable, Selectable, Insertable)]
#[diesel(table_name = upload_metadata)]
#[diesel(check_for_backend(diesel::pg::Pg))]
pub struct MetadataRow {
    pub upload_id: Uuid,
    pub size_bytes: i64,
    pub md5_hex: String,
    pub sha256_hex: String,
    pub sniffed_content_type: String,
    pub computed_at: DateTime<Utc>,
}

/// The scan verdict of an upload's file.
#[derive(Debug, Clone, PartialEq, Eq, Queryable, Selectable, Insertable)]
#[diesel(table_name = upload_scans)]
#[diesel(check_for_backend(diesel::pg::Pg))]
pub struct ScanRow {
    /// The upload scanned.
    pub upload_id: Uuid,
    /// `clean` or `infected`.
    pub verdict: String,
    /// The signature clamd named, when infected.
    pub signature: Option<String>,
    /// Bytes streamed to the scanner.
    pub bytes_scanned: i64,
    /// The quarantine object's key, when infected.
    pub quarantine_key: Option<String>,
    /// When the verdict was recorded.
    pub scanned_at: DateTime<Utc>,
}

/// Media facts from ffprobe.
#[derive(Debug, Clone, PartialEq, Queryable, Selectable, Insertable)]
#[diesel(table_name = upload_media)]
#[diesel(check_for_backend(diesel::pg::Pg))]
pub struct MediaRow {
    /// The upload probed.
    pub upload_id: Uuid,
    /// Container format names, as ffprobe gives them (`mov,mp4,m4a,3gp,3g2,mj2`).
    pub container: String,
    /// Duration in milliseconds.
    pub duration_ms: Option<i64>,
    /// Overall bit rate in bits per second.
    pub bit_rate: Option<i64>,
    /// Width of the first video stream.
    pub width: Option<i32>,
    /// Height of the first video stream.
    pub height: Option<i32>,
    /// Codec of the first video stream.
    pub video_codec: Option<String>,
    /// Codec of the first audio stream.
    pub audio_codec: Option<String>,
    /// Frames per second of the first video stream.
    pub frame_rate: Option<f64>,
    /// When the probe ran.
    pub probed_at: DateTime<Utc>,
}

/// One preview object made from an upload.
#[derive(Debug, Clone, PartialEq, Eq, Queryable, Selectable, Insertable)]
#[diesel(table_name = upload_previews)]
#[diesel(check_for_backend(diesel::pg::Pg))]
pub struct PreviewRow {
    /// The upload previewed.
    pub upload_id: Uuid,
    /// Unique per upload (`thumb-256`, `clip`).
    pub name: String,
    /// `thumbnail` or `clip`.
    pub kind: String,
    /// MIME type of the preview object.
    pub content_type: String,
    /// Key of the preview object in `bucket`.
    pub object_key: String,
    /// Pixel width.
    pub width: i32,
    /// Pixel height.
    pub height: i32,
    /// Object size.
    pub size_bytes: i64,
    /// When it was made.
    pub created_at: DateTime<Utc>,
    /// `temp` until the file is stored, then `regular`.
    pub bucket: String,
}

/// Something a seller was told.
#[derive(Debug, Clone, PartialEq, Queryable, Selectable)]
#[diesel(table_name = notifications)]
#[diesel(check_for_backend(diesel::pg::Pg))]
pub struct NotificationRow {
    /// Notification id (also sent to webhooks, for de-duplication).
    pub id: Uuid,
    /// The seller told.
    pub seller_id: String,
    /// The upload it is about.
    pub upload_id: Option<Uuid>,
    /// `upload.quarantined`, `upload.rejected`, `upload.failed`, ...
    pub kind: String,
    /// A sentence for the seller.
    pub message: String,
    /// Machine-readable details.
    pub details: serde_json::Value,
    /// When it was recorded.
    pub created_at: DateTime<Utc>,
    /// When the webhook accepted it.
    pub delivered_at: Option<DateTime<Utc>>,
    /// Webhook attempts so far.
    pub delivery_attempts: i32,
    /// The last webhook error.
    pub last_error: Option<String>,
    /// The item submission it is about.
    pub submission_id: Option<Uuid>,
}

/// A notification to record.
#[derive(Debug, Clone, Insertable)]
#[diesel(table_name = notifications)]
pub struct NewNotification {
    /// Fresh id.
    pub id: Uuid,
    /// The seller to tell.
    pub seller_id: String,
    /// The upload it is about.
    pub upload_id: Option<Uuid>,
    /// The kind.
    pub kind: String,
    /// A sentence for the seller.
    pub message: String,
    /// Machine-readable details.
    pub details: serde_json::Value,
    /// The item submission it is about.
    pub submission_id: Option<Uuid>,
}

impl NewNotification {
    /// A fresh notification to the owner of `upload`.
    pub fn about_upload(
        upload: &UploadRow,
        kind: &str,
        message: String,
        details: serde_json::Value,
    ) -> Self {
        Self {
            id: Uuid::now_v7(),
            seller_id: upload.owner_id.clone(),
            upload_id: Some(upload.id),
            kind: kind.to_owned(),
            message,
            details,
            submission_id: None,
        }
    }
}

/// An item as saved.
#[derive(Debug, Clone, PartialEq, Eq, Queryable, Selectable)]
#[diesel(table_name = items)]
#[diesel(check_for_backend(diesel::pg::Pg))]
pub struct ItemRow {
    pub id: Uuid,
    pub owner_id: String,
    /// `digital_file` or `video`.
    pub kind: String,
    pub title: String,
    pub description: String,
    /// The submission (by `seq`) whose fields these are.
    pub fields_seq: Option<i64>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl ItemRow {
    /// The parsed kind.
    pub fn kind(&self) -> Result<ItemKind, DbError> {
        self.kind.parse().map_err(DbError::Corrupt)
    }
}

/// One SubmitItem call and how far its background work has come.
#[derive(Debug, Clone, PartialEq, Eq, Queryable, Selectable)]
#[diesel(table_name = item_submissions)]
#[diesel(check_for_backend(diesel::pg::Pg))]
pub struct SubmissionRow {
    pub id: Uuid,
    /// Order of submissions.
    pub seq: i64,
    pub item_id: Uuid,
    pub owner_id: String,
    pub idempotency_key: String,
    pub request_digest: String,
    pub title: String,
    pub description: String,
    pub state: String,
    pub failure_code: Option<String>,
    pub failure_message: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl SubmissionRow {
    /// The parsed state.
    pub fn state(&self) -> Result<SubmissionState, DbError> {
        self.state.parse().map_err(DbError::Corrupt)
    }
}

/// A file of an item.
#[derive(Debug, Clone, PartialEq, Eq, Queryable, Selectable)]
#[diesel(table_name = item_files)]
#[diesel(check_for_backend(diesel::pg::Pg))]
pub struct ItemFileRow {
    pub id: Uuid,
    pub item_id: Uuid,
    /// The version buyers get, once one is stored.
    pub current_version: Option<i32>,
    pub created_at: DateTime<Utc>,
}

/// An upload a submission brings, and the file it becomes a version of.
#[derive(Debug, Clone, PartialEq, Eq, Queryable, Selectable, Insertable)]
#[diesel(table_name = submission_files)]
#[diesel(check_for_backend(diesel::pg::Pg))]
pub struct SubmissionFileRow {
    pub submission_id: Uuid,
    pub upload_id: Uuid,
    pub file_id: Uuid,
    /// Order within the submission.
    pub position: i32,
}

/// One object of the regular bucket.
#[derive(Debug, Clone, PartialEq, Eq, Queryable, Selectable, Insertable)]
#[diesel(table_name = stored_objects)]
#[diesel(check_for_backend(diesel::pg::Pg))]
pub struct StoredObjectRow {
    pub md5_hex: String,
    pub sha256_hex: String,
    pub size_bytes: i64,
    pub object_key: String,
    pub created_at: DateTime<Utc>,
}

/// One stored version of a file.
#[derive(Debug, Clone, PartialEq, Eq, Queryable, Selectable, Insertable)]
#[diesel(table_name = file_versions)]
#[diesel(check_for_backend(diesel::pg::Pg))]
pub struct VersionRow {
    pub file_id: Uuid,
    /// 1, 2, 3, ... per file.
    pub version: i32,
    pub upload_id: Uuid,
    pub submission_id: Uuid,
    pub md5_hex: String,
    pub sha256_hex: String,
    pub size_bytes: i64,
    /// The seller's name for the file, for downloads.
    pub file_name: String,
    pub content_type: String,
    pub created_at: DateTime<Utc>,
}
