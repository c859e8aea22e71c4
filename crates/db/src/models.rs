//! Rows as read (`...Row`) and as inserted (`New...`).

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use upload_domain::{PartPlan, Stage, StageStatus, UploadId, UploadState};
use uuid::Uuid;

use crate::DbError;
use crate::schema::{upload_metadata, upload_parts, upload_progress, uploads};

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
