//! The upload as the API shows it: one read model, loaded in one query
//! (`upload_db::snapshot`), owner-checked, and turned into its protobuf form with
//! a GET URL for each preview. Every RPC that returns an upload, and every
//! WatchProgress update, goes through here.

use upload_db::snapshot::UploadSnapshotRows;
use upload_domain::{Bucket, Caller, UploadId, UploadState};
use upload_proto::v1 as pb;
use upload_storage::{Reader, StorageKey};

use crate::convert;
use crate::error::ApiError;
use crate::state::AppState;

/// One upload, with its stages and everything the pipeline found.
#[derive(Debug, Clone)]
pub struct UploadSnapshot {
    rows: UploadSnapshotRows,
}

impl UploadSnapshot {
    /// The snapshot of upload `id` if `caller` owns it; NOT_FOUND otherwise, exactly
    /// as for an upload that does not exist.
    pub async fn load(state: &AppState, caller: &Caller, id: UploadId) -> Result<Self, ApiError> {
        Self::load_with(state, caller, id, false).await
    }

    /// [`UploadSnapshot::load`], with the upload's history when `with_history`
    /// (still one query).
    pub async fn load_with(
        state: &AppState,
        caller: &Caller,
        id: UploadId,
        with_history: bool,
    ) -> Result<Self, ApiError> {
        match Self::read(state, id, with_history).await? {
            Some(snapshot) if caller.reaches(&snapshot.rows.upload.owner_id) => Ok(snapshot),
            _ => Err(ApiError::UploadNotFound(id)),
        }
    }

    /// The snapshot of upload `id` for its watchers' feed, whose every watcher's
    /// ownership was checked before it joined; NOT_FOUND when it does not exist.
    pub async fn load_for_watchers(state: &AppState, id: UploadId) -> Result<Self, ApiError> {
        Self::read(state, id, false)
            .await?
            .ok_or(ApiError::UploadNotFound(id))
    }

    /// Upload `id`'s rows, in the one query, whoever asks.
    async fn read(
        state: &AppState,
        id: UploadId,
        with_history: bool,
    ) -> Result<Option<Self>, ApiError> {
        let mut conn = state.pool.get().await.map_err(upload_db::DbError::from)?;
        Ok(upload_db::snapshot::load(&mut conn, id, with_history)
            .await?
            .map(|rows| Self { rows }))
    }

    /// The upload's state.
    pub fn state(&self) -> UploadState {
        self.rows.upload.state
    }

    /// The upload and its stages in protobuf form; previews get a GET URL each,
    /// signed for the seller's client.
    pub async fn to_proto(
        &self,
        state: &AppState,
    ) -> Result<(pb::Upload, Vec<pb::StageProgress>), ApiError> {
        let rows = &self.rows;
        let id = rows.upload.id;
        let mut previews = Vec::with_capacity(rows.previews.len());
        for p in &rows.previews {
            // A stored file's previews moved with it to the regular bucket.
            let key = match (p.bucket, &rows.metadata) {
                (Bucket::Regular, Some(facts)) => StorageKey::StoredPreview {
                    md5: facts.md5,
                    name: &p.name,
                },
                _ => StorageKey::Preview {
                    upload: id,
                    name: &p.name,
                },
            };
            let url = state
                .store
                .presign_get(&key, Reader::Client, state.policy.sign_expiry)
                .await?;
            previews.push(convert::preview(p, &url));
        }
        let upload = pb::Upload {
            previews,
            metadata: rows.metadata.as_ref().map(convert::metadata),
            scan: rows.scan.as_ref().map(convert::scan),
            media: rows.media.as_ref().map(convert::media),
            ..convert::upload(&rows.upload)
        };
        Ok((upload, convert::stages(&rows.progress)))
    }

    /// The upload's history in protobuf form (empty unless loaded with it).
    pub fn history(&self) -> Vec<pb::UploadChange> {
        self.rows.history.iter().map(convert::change).collect()
    }

    /// The protobuf upload alone.
    pub async fn upload(&self, state: &AppState) -> Result<pb::Upload, ApiError> {
        Ok(self.to_proto(state).await?.0)
    }
}
