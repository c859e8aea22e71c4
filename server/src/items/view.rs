//! An item as the API shows it, and WatchItem.

use std::pin::Pin;
use std::sync::Arc;

use futures::Stream;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::Status;
use upload_db::models::{ItemFileRow, ItemRow, SubmissionRow};
use upload_db::versions::VersionEntry;
use upload_domain::{Caller, ItemId, ItemKind, SubmissionState};
use upload_proto::v1 as pb;

use super::{Need, item_for};
use crate::convert::timestamp;
use crate::error::ApiError;
use crate::progress_hub;
use crate::state::AppState;

/// The stream WatchItem returns.
pub type ItemStream = Pin<Box<dyn Stream<Item = Result<pb::WatchItemResponse, Status>> + Send>>;

fn kind(k: ItemKind) -> pb::ItemKind {
    match k {
        ItemKind::DigitalFile => pb::ItemKind::DigitalFile,
        ItemKind::Video => pb::ItemKind::Video,
    }
}

fn submission_state(s: SubmissionState) -> pb::SubmissionState {
    match s {
        SubmissionState::Queued => pb::SubmissionState::Queued,
        SubmissionState::Persisted => pb::SubmissionState::Persisted,
        SubmissionState::Stored => pb::SubmissionState::Stored,
        SubmissionState::Failed => pb::SubmissionState::Failed,
    }
}

/// A version in protobuf form.
pub fn version(entry: &VersionEntry) -> pb::FileVersion {
    let (v, current) = (&entry.row, entry.current);
    pb::FileVersion {
        file_id: v.file_id.to_string(),
        version: u32::try_from(v.version).unwrap_or(0),
        md5_hex: v.md5.to_hex(),
        sha256_hex: v.sha256.to_hex(),
        size_bytes: u64::try_from(v.size_bytes).unwrap_or(0),
        file_name: v.file_name.clone(),
        content_type: v.content_type.clone(),
        created_at: Some(timestamp(v.created_at)),
        upload_id: v.upload_id.to_string(),
        current,
        quarantined: entry.quarantine.as_ref().map(|q| pb::VersionQuarantine {
            signature: q.signature.clone(),
            quarantined_at: Some(timestamp(q.quarantined_at)),
            signature_version: q.signature_version.unwrap_or(0),
            held: q.held,
        }),
    }
}

/// A file with its current version and how many it has, from the item's versions.
pub fn item_file(file: &ItemFileRow, versions: &[VersionEntry]) -> pb::ItemFile {
    let mine = || versions.iter().filter(|e| e.row.file_id == file.id);
    pb::ItemFile {
        file_id: file.id.to_string(),
        current: mine().find(|e| e.current).map(version),
        version_count: u32::try_from(mine().count()).unwrap_or(0),
    }
}

/// The item with its files and its latest submission's state; true when that
/// submission has settled (nothing more happens on its own).
pub async fn snapshot(state: &AppState, row: ItemRow) -> Result<(pb::Item, bool), ApiError> {
    let id = row.id;
    let mut conn = state.pool.get().await.map_err(upload_db::DbError::from)?;
    let latest: Option<SubmissionRow> = upload_db::items::latest_submission(&mut conn, id).await?;
    let files = upload_db::items::files(&mut conn, id).await?;
    let versions = upload_db::versions::list(&mut conn, id, None).await?;
    drop(conn);
    let out_files = files.iter().map(|f| item_file(f, &versions)).collect();
    let sub_state = latest.as_ref().map(|s| s.state);
    let item = pb::Item {
        item_id: row.id.to_string(),
        kind: kind(row.kind) as i32,
        title: row.title.clone(),
        description: row.description.clone(),
        state: sub_state.map_or(pb::SubmissionState::Unspecified, submission_state) as i32,
        failure: latest
            .as_ref()
            .and_then(SubmissionRow::failure)
            .map(crate::convert::failure),
        submission_id: latest
            .as_ref()
            .map(|s| s.id.to_string())
            .unwrap_or_default(),
        files: out_files,
        created_at: Some(timestamp(row.created_at)),
        updated_at: Some(timestamp(row.updated_at)),
    };
    Ok((item, sub_state.is_none_or(SubmissionState::is_settled)))
}

async fn current(
    state: &AppState,
    caller: &Caller,
    id: ItemId,
) -> Result<(pb::WatchItemResponse, bool), ApiError> {
    let row = item_for(state, caller, id, Need::Read).await?;
    let (item, settled) = snapshot(state, row).await?;
    Ok((pb::WatchItemResponse { item: Some(item) }, settled))
}

/// WatchItem: the item at once, then each change, until its latest submission
/// settles or the client goes away.
pub async fn handle_watch_item(
    state: Arc<AppState>,
    caller: Caller,
    id: ItemId,
) -> Result<ItemStream, ApiError> {
    // Access first: nothing is subscribed for a caller who may not see the item.
    item_for(&state, &caller, id, Need::Read).await?;
    // Then subscribed before the first read sent, so no change falls between.
    let mut events = state.hub.subscribe(id.as_uuid());
    let (first, settled) = current(&state, &caller, id).await?;
    let (tx, rx) = mpsc::channel(16);
    tokio::spawn(async move {
        let mut last = first.clone();
        if tx.send(Ok(first)).await.is_err() || settled {
            return;
        }
        loop {
            let event = tokio::select! {
                event = events.recv() => event,
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
