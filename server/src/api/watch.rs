use std::sync::Arc;

use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use upload_db::models::UploadRow;
use upload_domain::{Caller, UploadId, UploadState};
use upload_proto::v1 as pb;

use super::WatchStream;
use crate::convert;
use crate::error::ApiError;
use crate::progress_hub;
use crate::state::AppState;

/// The upload and its stages as the API shows them.
pub async fn snapshot(
    state: &AppState,
    row: UploadRow,
) -> Result<(pb::Upload, Vec<pb::StageProgress>), ApiError> {
    let id = row.upload_id();
    let mut conn = state.pool.get().await.map_err(upload_db::DbError::from)?;
    let progress = upload_db::progress::for_upload(&mut conn, id).await?;
    let mut found = convert::Findings::default();
    // Before the scan has a verdict there is nothing to find: spare the queries.
    let scanned = !matches!(
        row.state()?,
        UploadState::Created
            | UploadState::Uploading
            | UploadState::Uploaded
            | UploadState::Scanning
    );
    if scanned {
        found.metadata = upload_db::uploads::metadata(&mut conn, id).await?;
        found.scan = upload_db::results::scan(&mut conn, id).await?;
        found.media = upload_db::results::media(&mut conn, id).await?;
        let previews = upload_db::results::previews(&mut conn, id).await?;
        drop(conn);
        for p in previews {
            // A stored file's previews moved with it to the regular bucket.
            let stored_md5 = found.metadata.as_ref().map(|m| m.md5_hex.as_str());
            let key = match (p.bucket.as_str(), stored_md5) {
                ("regular", Some(md5_hex)) => upload_storage::StorageKey::StoredPreview {
                    md5_hex,
                    name: &p.name,
                },
                _ => upload_storage::StorageKey::Preview {
                    upload: id,
                    name: &p.name,
                },
            };
            let url = state
                .store
                .presign_get(
                    &key,
                    upload_storage::Reader::Client,
                    state.policy.sign_expiry,
                )
                .await?;
            found.previews.push((p, url));
        }
    }
    Ok((convert::upload(&row, &found)?, convert::stages(&progress)?))
}

async fn current(
    state: &AppState,
    caller: &Caller,
    id: UploadId,
) -> Result<(pb::WatchProgressResponse, bool), ApiError> {
    let row = state.owned_upload(caller, id).await?;
    let settled = row.state()?.is_settled();
    let (upload, stages) = snapshot(state, row).await?;
    Ok((
        pb::WatchProgressResponse {
            upload: Some(upload),
            stages,
        },
        settled,
    ))
}

async fn refresh_upload_progress(
    state: &AppState,
    caller: &Caller,
    id: UploadId,
    last: &pb::WatchProgressResponse,
) {
    let result = async {
        let row = state.owned_upload(caller, id).await?;
        if !row.state()?.accepts_parts() {
            return Ok(());
        }
        let plan = row.plan()?;
        // None: the store no longer has the multipart upload; nothing to show.
        let Some(report) =
            super::parts::stored_vs_signed(state, id, &row.temp_key, &row.store_upload_id, &plan)
                .await?
        else {
            return Ok(());
        };
        let shown = last
            .stages
            .iter()
            .find(|s| s.stage == pb::Stage::Upload as i32)
            .map(|s| s.bytes_done);
        if shown != Some(report.bytes_done()) {
            super::parts::record_upload_progress(state, id, &plan, &report).await;
        }
        Ok::<_, ApiError>(())
    }
    .await;
    if let Err(e) = result {
        tracing::debug!(%id, error = %e, "could not refresh upload progress");
    }
}

/// WatchProgress: the current progress at once, then each change, until the upload
/// settles or the client goes away.
pub async fn handle_watch_progress(
    state: Arc<AppState>,
    caller: &Caller,
    id: UploadId,
) -> Result<WatchStream, ApiError> {
    // Subscribe before the first read, so no change can fall between the two.
    let mut events = state.hub.subscribe(id.as_uuid());
    let (first, settled) = current(&state, caller, id).await?;
    let (tx, rx) = mpsc::channel(16);
    let caller = caller.clone();
    tokio::spawn(async move {
        let mut last = first.clone();
        if tx.send(Ok(first)).await.is_err() || settled {
            return;
        }
        let mut refresh = tokio::time::interval(state.policy.progress_refresh);
        refresh.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            let uploading = last.upload.as_ref().is_some_and(|u| {
                u.state == pb::UploadState::Created as i32
                    || u.state == pb::UploadState::Uploading as i32
            });
            let event = tokio::select! {
                event = events.recv() => event,
                // The bytes travel straight to the store, so only the store knows how
                // far the upload is: ask it while someone is watching. The progress
                // write notifies every watcher, on every replica.
                _ = refresh.tick(), if uploading => {
                    refresh_upload_progress(&state, &caller, id, &last).await;
                    continue;
                }
                () = tx.closed() => return,
            };
            if !progress_hub::should_reread(event)
                || !progress_hub::forward(&tx, &mut last, current(&state, &caller, id).await).await
            {
                return;
            }
        }
    });
    Ok(Box::pin(ReceiverStream::new(rx)))
}
