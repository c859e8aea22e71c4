//! WatchProgress: the upload's snapshot at once, then again at each change, until
//! it settles or the client goes away. Each update is one snapshot read.

use std::sync::Arc;

use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use upload_assembly::{inspect_parts, record_upload_progress};
use upload_domain::{Caller, UploadId};
use upload_proto::v1 as pb;

use super::WatchStream;
use crate::error::ApiError;
use crate::progress_hub;
use crate::snapshot::UploadSnapshot;
use crate::state::AppState;

async fn current(
    state: &AppState,
    caller: &Caller,
    id: UploadId,
) -> Result<(pb::WatchProgressResponse, bool), ApiError> {
    let snapshot = UploadSnapshot::load(state, caller, id).await?;
    let settled = snapshot.state().is_settled();
    let (upload, stages) = snapshot.to_proto(state).await?;
    Ok((
        pb::WatchProgressResponse {
            upload: Some(upload),
            stages,
        },
        settled,
    ))
}

/// The bytes travel straight to the store, so only the store knows how far an
/// unfinished upload is: ask it, and record what changed (the write notifies every
/// watcher, on every replica).
async fn refresh_upload_progress(
    state: &AppState,
    caller: &Caller,
    id: UploadId,
    last: &pb::WatchProgressResponse,
) {
    let result = async {
        let row = state.owned_upload(caller, id).await?;
        if !row.state.accepts_parts() {
            return Ok(());
        }
        let plan = row.plan()?;
        // None: the store no longer has the multipart upload; nothing to show.
        let Some(report) = inspect_parts(&state.pool, &state.store, &row).await? else {
            return Ok(());
        };
        let shown = last
            .stages
            .iter()
            .find(|s| s.stage == pb::Stage::Upload as i32)
            .map(|s| s.bytes_done);
        if shown != Some(report.bytes_done()) {
            record_upload_progress(&state.pool, &row, &plan, &report).await;
        }
        Ok::<_, ApiError>(())
    }
    .await;
    if let Err(e) = result {
        tracing::debug!(%id, error = %e, "could not refresh upload progress");
    }
}

/// Handles WatchProgress.
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
