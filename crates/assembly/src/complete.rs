//! Completing an upload the store has assembled: one guarded transition in one
//! transaction with the first job, whoever finds the object first.

use upload_db::DbPool;
use upload_db::models::UploadRow;
use upload_db::uploads::Transition;
use upload_domain::Actor;
use upload_storage::{StorageKey, Store};

use crate::AssemblyError;

/// What [`complete_if_assembled`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Completion {
    /// Recorded now: the upload is `uploaded` and its scan is queued.
    Recorded,
    /// The object is assembled, but another actor recorded it first (or the upload
    /// moved on); nothing was written.
    AlreadyRecorded,
    /// The store does not hold an object of the declared size.
    NotAssembled,
}

/// Records the completion of `upload` when the store holds its assembled object of
/// the declared size: the upload moves from `uploading` to `uploaded` and its scan
/// is enqueued, in one transaction, by whichever caller wins the guarded
/// transition. Used by CompleteUpload after assembling, and by the sweeper for a
/// completion that died before its database write.
pub async fn complete_if_assembled(
    pool: &DbPool,
    store: &Store,
    upload: &UploadRow,
    by: &Actor,
) -> Result<Completion, AssemblyError> {
    let object = StorageKey::Temp {
        owner: &upload.owner_id,
        upload: upload.id,
    };
    let size = upload.declared_bytes();
    if store.object_size(&object).await? != Some(size) {
        return Ok(Completion::NotAssembled);
    }
    let mut conn = pool.get().await.map_err(upload_db::DbError::from)?;
    Ok(
        match upload_db::pipeline::record_completion(&mut conn, upload.id, size, by).await? {
            Transition::Applied(_) => Completion::Recorded,
            Transition::Lost => Completion::AlreadyRecorded,
        },
    )
}
