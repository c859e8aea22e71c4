//! Rows as read (`...Row`) and as inserted (`New...`). Columns holding a domain
//! word, id or digest are read as that type: an unknown word fails the read, so
//! nothing past this edge ever sees a raw state, verdict, code or kind.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use upload_domain::{
    Bucket, ContentHash, Failure, FailureCode, FileId, ItemId, ItemKind, Md5Digest, NotificationId,
    NotificationKind, ObjectStanding, PartChecksum, PartPin, PartPlan, PreviewKind, ScanVerdict,
    SellerGroup, SellerId, Sha256Digest, Stage, StageStatus, SubmissionId, SubmissionState,
    Uninspected, UploadId, UploadState,
};

use crate::DbError;
use crate::schema::{
    file_versions, item_files, item_submissions, items, notifications, stored_objects,
    submission_files, upload_media, upload_metadata, upload_parts, upload_previews,
    upload_progress, upload_scans, uploads,
};

/// The failure recorded beside a state, when there is one.
fn failure(code: Option<FailureCode>, message: Option<&str>) -> Option<Failure> {
    code.map(|code| Failure::new(code, message.unwrap_or(code.meaning())))
}

/// An upload as stored.
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = uploads)]
#[diesel(check_for_backend(diesel::pg::Pg))]
pub struct UploadRow {
    pub id: UploadId,
    pub owner_id: SellerId,
    pub owner_group: SellerGroup,
    pub file_name: String,
    pub declared_size: i64,
    pub declared_content_type: String,
    /// The temp object's key as made at creation, for operators' queries; code
    /// derives it from the owner and the id (`StorageKey::Temp`).
    pub temp_key: String,
    pub store_upload_id: String,
    pub part_size: i64,
    pub part_count: i32,
    pub state: UploadState,
    pub failure_code: Option<FailureCode>,
    pub failure_message: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    pub completed_at: Option<DateTime<Utc>>,
    /// The key CreateUpload was called with, when the client sent one.
    pub idempotency_key: Option<String>,
    /// What every part is signed with.
    pub part_checksum: PartChecksum,
}

impl UploadRow {
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

    /// The declared size in bytes.
    pub fn declared_bytes(&self) -> u64 {
        u64::try_from(self.declared_size).unwrap_or(0)
    }

    /// Why the upload stopped, when it did.
    pub fn failure(&self) -> Option<Failure> {
        failure(self.failure_code, self.failure_message.as_deref())
    }
}

/// A new upload.
#[derive(Debug, Insertable)]
#[diesel(table_name = uploads)]
pub struct NewUpload<'a> {
    pub id: UploadId,
    pub owner_id: &'a SellerId,
    pub owner_group: SellerGroup,
    pub file_name: &'a str,
    pub declared_size: i64,
    pub declared_content_type: &'a str,
    pub temp_key: &'a str,
    pub store_upload_id: &'a str,
    pub part_size: i64,
    pub part_count: i32,
    pub state: UploadState,
    pub expires_at: DateTime<Utc>,
    pub idempotency_key: Option<&'a str>,
    pub part_checksum: PartChecksum,
}

/// A part as signed.
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = upload_parts)]
#[diesel(check_for_backend(diesel::pg::Pg))]
pub struct PartRow {
    pub upload_id: UploadId,
    pub part_number: i32,
    /// The MD5 signed in, for an upload pinned by MD5.
    pub content_md5: Option<Md5Digest>,
    pub size_bytes: i64,
    pub signed_at: DateTime<Utc>,
    /// The SHA-256 signed in, for an upload pinned by SHA-256.
    pub checksum_sha256: Option<Sha256Digest>,
}

impl PartRow {
    /// What the part was signed with (the table holds exactly one digest a row).
    pub fn pin(&self) -> Result<PartPin, DbError> {
        PartPin::from_columns(self.content_md5, self.checksum_sha256).ok_or_else(|| {
            DbError::Corrupt(format!(
                "part {} of upload {} holds no single signed digest",
                self.part_number, self.upload_id
            ))
        })
    }
}

/// One stage's progress.
#[derive(Debug, Clone, Queryable, Selectable, serde::Deserialize)]
#[diesel(table_name = upload_progress)]
#[diesel(check_for_backend(diesel::pg::Pg))]
pub struct ProgressRow {
    pub upload_id: UploadId,
    #[serde(deserialize_with = "word")]
    pub stage: Stage,
    #[serde(deserialize_with = "word")]
    pub status: StageStatus,
    pub bytes_done: i64,
    pub bytes_total: i64,
    pub detail: String,
    pub updated_at: DateTime<Utc>,
}

/// Reads a domain word from JSON (rows aggregated by PostgreSQL), failing on an
/// unknown one as a column read would.
pub(crate) fn word<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: serde::Deserializer<'de>,
    T: std::str::FromStr,
    T::Err: std::fmt::Display,
{
    let text = <String as serde::Deserialize>::deserialize(d)?;
    text.parse().map_err(serde::de::Error::custom)
}

/// The facts read from the stored file.
#[derive(Debug, Clone, PartialEq, Eq, Queryable, Selectable, Insertable)]
#[diesel(table_name = upload_metadata)]
#[diesel(check_for_backend(diesel::pg::Pg))]
pub struct MetadataRow {
    pub upload_id: UploadId,
    pub size_bytes: i64,
    #[diesel(column_name = md5_hex)]
    pub md5: Md5Digest,
    #[diesel(column_name = sha256_hex)]
    pub sha256: Sha256Digest,
    pub sniffed_content_type: String,
    pub computed_at: DateTime<Utc>,
    /// A program or a script, accepted where software is sold.
    pub software: bool,
}

impl MetadataRow {
    /// The content's MD5 and SHA-256 together.
    pub fn content_hash(&self) -> ContentHash {
        ContentHash {
            md5: self.md5,
            sha256: self.sha256,
        }
    }

    /// The file's size in bytes.
    pub fn size(&self) -> u64 {
        u64::try_from(self.size_bytes).unwrap_or(0)
    }
}

/// The scan verdict of an upload's file.
#[derive(Debug, Clone, PartialEq, Eq, Queryable, Selectable, Insertable)]
#[diesel(table_name = upload_scans)]
#[diesel(check_for_backend(diesel::pg::Pg))]
pub struct ScanRow {
    /// The upload scanned.
    pub upload_id: UploadId,
    /// What the scanner concluded.
    pub verdict: ScanVerdict,
    /// The signature clamd named, when infected.
    pub signature: Option<String>,
    /// Bytes streamed to the scanner.
    pub bytes_scanned: i64,
    /// The quarantine object's key, when infected.
    pub quarantine_key: Option<String>,
    /// When the verdict was recorded.
    pub scanned_at: DateTime<Utc>,
    /// Why the scanner did not inspect the whole file: the reason for an
    /// unscannable verdict, or what an allowed encrypted archive kept unread.
    pub uninspected: Option<Uninspected>,
    /// The clamd engine that made the verdict (`ClamAV 1.4.6`).
    pub engine_version: Option<String>,
    /// The signature database version it was made with.
    pub signature_version: Option<i64>,
    /// The operator who released the file over a finding.
    pub released_by: Option<String>,
    /// Why.
    pub release_reason: Option<String>,
    /// The finding overridden.
    pub released_signature: Option<String>,
}

/// Media facts from ffprobe.
#[derive(Debug, Clone, PartialEq, Queryable, Selectable, Insertable)]
#[diesel(table_name = upload_media)]
#[diesel(check_for_backend(diesel::pg::Pg))]
pub struct MediaRow {
    /// The upload probed.
    pub upload_id: UploadId,
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
#[derive(Debug, Clone, PartialEq, Eq, Queryable, Selectable, Insertable, serde::Deserialize)]
#[diesel(table_name = upload_previews)]
#[diesel(check_for_backend(diesel::pg::Pg))]
pub struct PreviewRow {
    /// The upload previewed.
    pub upload_id: UploadId,
    /// Unique per upload (`thumb-256.jpg`, `clip.mp4`).
    pub name: String,
    /// Still or clip.
    #[serde(deserialize_with = "word")]
    pub kind: PreviewKind,
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
    /// Temp until the file is stored, then regular.
    #[serde(deserialize_with = "word")]
    pub bucket: Bucket,
}

/// Something a seller was told.
#[derive(Debug, Clone, PartialEq, Queryable, Selectable)]
#[diesel(table_name = notifications)]
#[diesel(check_for_backend(diesel::pg::Pg))]
pub struct NotificationRow {
    /// Notification id (also sent to webhooks, for de-duplication).
    pub id: NotificationId,
    /// The seller told.
    pub seller_id: SellerId,
    /// The upload it is about.
    pub upload_id: Option<UploadId>,
    /// What it announces.
    pub kind: NotificationKind,
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
    pub submission_id: Option<SubmissionId>,
}

/// A notification to record.
#[derive(Debug, Clone, Insertable)]
#[diesel(table_name = notifications)]
pub struct NewNotification {
    /// Fresh id.
    pub id: NotificationId,
    /// The seller to tell.
    pub seller_id: SellerId,
    /// The upload it is about.
    pub upload_id: Option<UploadId>,
    /// What it announces.
    pub kind: NotificationKind,
    /// A sentence for the seller.
    pub message: String,
    /// Machine-readable details.
    pub details: serde_json::Value,
    /// The item submission it is about.
    pub submission_id: Option<SubmissionId>,
    /// What occasion it announces, where one upload can have several of a kind
    /// (held, released, held again): the history row that made the change. Empty
    /// for the notifications an upload or a submission has at most one of.
    pub occasion: String,
}

impl NewNotification {
    /// The same notification, as one of several of its kind: the occasion is the
    /// history row `event` (a job that runs twice still tells once).
    pub fn on_occasion(mut self, event: i64) -> Self {
        self.occasion = event.to_string();
        self
    }

    /// A fresh notification of `kind` to `seller`, about an upload or a submission.
    fn to(
        seller: &SellerId,
        about: (Option<UploadId>, Option<SubmissionId>),
        kind: NotificationKind,
        message: String,
        details: serde_json::Value,
    ) -> Self {
        Self {
            id: NotificationId::new(),
            seller_id: seller.clone(),
            upload_id: about.0,
            kind,
            message,
            details,
            submission_id: about.1,
            occasion: String::new(),
        }
    }

    /// A fresh notification to the owner of `upload`.
    pub fn about_upload(
        upload: &UploadRow,
        kind: NotificationKind,
        message: String,
        details: serde_json::Value,
    ) -> Self {
        Self::to(
            &upload.owner_id,
            (Some(upload.id), None),
            kind,
            message,
            details,
        )
    }

    /// A fresh notification to `owner` about the stored version that `upload`
    /// became.
    pub fn about_stored_version(
        owner: &SellerId,
        upload: UploadId,
        kind: NotificationKind,
        message: String,
        details: serde_json::Value,
    ) -> Self {
        Self::to(owner, (Some(upload), None), kind, message, details)
    }

    /// A fresh notification to the owner of a submission.
    pub fn about_submission(
        submission: &SubmissionRow,
        kind: NotificationKind,
        message: String,
        details: serde_json::Value,
    ) -> Self {
        Self::to(
            &submission.owner_id,
            (None, Some(submission.id)),
            kind,
            message,
            details,
        )
    }
}

/// An item as saved.
#[derive(Debug, Clone, PartialEq, Eq, Queryable, Selectable)]
#[diesel(table_name = items)]
#[diesel(check_for_backend(diesel::pg::Pg))]
pub struct ItemRow {
    pub id: ItemId,
    pub owner_id: SellerId,
    pub kind: ItemKind,
    pub title: String,
    pub description: String,
    /// The submission (by `seq`) whose fields these are.
    pub fields_seq: Option<i64>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// One SubmitItem call and how far its background work has come.
#[derive(Debug, Clone, PartialEq, Eq, Queryable, Selectable)]
#[diesel(table_name = item_submissions)]
#[diesel(check_for_backend(diesel::pg::Pg))]
pub struct SubmissionRow {
    pub id: SubmissionId,
    /// Order of submissions.
    pub seq: i64,
    pub item_id: ItemId,
    pub owner_id: SellerId,
    pub idempotency_key: String,
    pub request_digest: String,
    pub title: String,
    pub description: String,
    pub state: SubmissionState,
    pub failure_code: Option<FailureCode>,
    pub failure_message: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl SubmissionRow {
    /// Why the submission failed, when it did.
    pub fn failure(&self) -> Option<Failure> {
        failure(self.failure_code, self.failure_message.as_deref())
    }
}

/// A file of an item.
#[derive(Debug, Clone, PartialEq, Eq, Queryable, Selectable)]
#[diesel(table_name = item_files)]
#[diesel(check_for_backend(diesel::pg::Pg))]
pub struct ItemFileRow {
    pub id: FileId,
    pub item_id: ItemId,
    /// The version buyers get, once one is stored.
    pub current_version: Option<i32>,
    pub created_at: DateTime<Utc>,
}

/// An upload a submission brings, and the file it becomes a version of.
#[derive(Debug, Clone, PartialEq, Eq, Queryable, Selectable, Insertable)]
#[diesel(table_name = submission_files)]
#[diesel(check_for_backend(diesel::pg::Pg))]
pub struct SubmissionFileRow {
    pub submission_id: SubmissionId,
    pub upload_id: UploadId,
    pub file_id: FileId,
    /// Order within the submission.
    pub position: i32,
}

/// One object of the regular bucket.
#[derive(Debug, Clone, PartialEq, Eq, Queryable, Selectable, Insertable)]
#[diesel(table_name = stored_objects)]
#[diesel(check_for_backend(diesel::pg::Pg))]
pub struct StoredObjectRow {
    #[diesel(column_name = md5_hex)]
    pub md5: Md5Digest,
    #[diesel(column_name = sha256_hex)]
    pub sha256: Sha256Digest,
    pub size_bytes: i64,
    pub object_key: String,
    pub created_at: DateTime<Utc>,
    /// Held or quarantined content is never placed at its MD5 key again.
    pub standing: ObjectStanding,
}

/// One stored version of a file.
#[derive(Debug, Clone, PartialEq, Eq, Queryable, Selectable, Insertable)]
#[diesel(table_name = file_versions)]
#[diesel(check_for_backend(diesel::pg::Pg))]
pub struct VersionRow {
    pub file_id: FileId,
    /// 1, 2, 3, ... per file.
    pub version: i32,
    pub upload_id: UploadId,
    pub submission_id: SubmissionId,
    #[diesel(column_name = md5_hex)]
    pub md5: Md5Digest,
    #[diesel(column_name = sha256_hex)]
    pub sha256: Sha256Digest,
    pub size_bytes: i64,
    /// The seller's name for the file, for downloads.
    pub file_name: String,
    pub content_type: String,
    pub created_at: DateTime<Utc>,
}
