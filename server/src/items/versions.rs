//! ListVersions, SetCurrentVersion and GetDownloadUrl. The caller's access to the
//! item is checked before these run.

use upload_domain::{DownloadRefusal, FileId, ItemId, VersionStanding};
use upload_proto::v1 as pb;
use upload_storage::StorageKey;

use super::view::version;
use crate::convert::timestamp;
use crate::error::ApiError;
use crate::state::AppState;

fn version_number(raw: u32) -> Result<i32, ApiError> {
    i32::try_from(raw)
        .ok()
        .filter(|v| *v >= 1)
        .ok_or_else(|| ApiError::invalid("version", format!("version {raw} is out of range")))
}

/// Every version of the item's files (or of one), newest first per file.
pub async fn handle_list_versions(
    state: &AppState,
    item: ItemId,
    file: Option<FileId>,
) -> Result<Vec<pb::FileVersion>, ApiError> {
    let mut conn = state.pool.get().await.map_err(upload_db::DbError::from)?;
    let rows = upload_db::versions::list(&mut conn, item, file).await?;
    if let (Some(file), true) = (file, rows.is_empty()) {
        return Err(not_found(&mut conn, item, file, None).await?);
    }
    Ok(rows.iter().map(version).collect())
}

/// Why a version was not found: the item has no such file, or the file has no
/// such version.
async fn not_found(
    conn: &mut diesel_async::AsyncPgConnection,
    item: ItemId,
    file: FileId,
    version: Option<i32>,
) -> Result<ApiError, ApiError> {
    let known = upload_db::items::files(conn, item)
        .await?
        .iter()
        .any(|f| f.id == file);
    Ok(if known {
        ApiError::VersionNotFound {
            item,
            file,
            version,
        }
    } else {
        ApiError::FileNotFound { item, file }
    })
}

/// Makes a stored version the current one.
pub async fn handle_set_current(
    state: &AppState,
    item: ItemId,
    file: FileId,
    raw_version: u32,
) -> Result<pb::ItemFile, ApiError> {
    let wanted = version_number(raw_version)?;
    let mut conn = state.pool.get().await.map_err(upload_db::DbError::from)?;
    let Some(row) = upload_db::versions::set_current(&mut conn, item, file, wanted).await? else {
        return Err(not_found(&mut conn, item, file, Some(wanted)).await?);
    };
    let versions = upload_db::versions::list(&mut conn, item, Some(file)).await?;
    Ok(super::view::item_file(&row, &versions))
}

/// A short-lived download URL for one version (0: the current one), named with the
/// seller's file name. Only for a file stored after a clean scan.
pub async fn handle_download(
    state: &AppState,
    item: ItemId,
    file: FileId,
    raw_version: u32,
) -> Result<pb::GetDownloadUrlResponse, ApiError> {
    let wanted = if raw_version == 0 {
        None
    } else {
        Some(version_number(raw_version)?)
    };
    let mut conn = state.pool.get().await.map_err(upload_db::DbError::from)?;
    let Some(entry) = upload_db::versions::find(&mut conn, item, file, wanted).await? else {
        return Err(not_found(&mut conn, item, file, wanted).await?);
    };
    let row = &entry.row;
    // A version exists only for a clean, stored file; the upload and its scan are
    // read anyway, so that no path can ever hand out a link to anything else.
    let upload = row.upload_id;
    let upload_state = upload_db::uploads::find(&mut conn, upload)
        .await?
        .map(|u| u.state);
    let verdict = upload_db::results::scan(&mut conn, upload)
        .await?
        .map(|s| s.verdict);
    drop(conn);
    let standing = VersionStanding {
        quarantine: entry
            .quarantine
            .as_ref()
            .map(|q| (q.signature.as_str(), q.held)),
        upload: upload_state,
        verdict,
    };
    match standing.may_download() {
        Ok(()) => {}
        Err(DownloadRefusal::Quarantined { signature, held }) => {
            return Err(ApiError::VersionQuarantined {
                file,
                version: row.version,
                signature,
                held,
            });
        }
        Err(DownloadRefusal::NotStoredClean { stored, clean }) => {
            tracing::error!(%upload, stored, clean, "a version whose file is not stored clean");
            return Err(ApiError::NotDownloadable {
                file,
                version: row.version,
            });
        }
    }
    let (url, expires_at) = state
        .store
        .presign_download(
            &StorageKey::Content { md5: row.md5 },
            &row.file_name,
            &row.content_type,
            state.policy.download_expiry,
        )
        .await?;
    Ok(pb::GetDownloadUrlResponse {
        url,
        expires_at: Some(timestamp(expires_at)),
        version: Some(version(&entry)),
    })
}
