//! WatchProgress: the upload's snapshot at once, then again at each change, until
//! it settles or the client goes away. Ownership is checked before anything is
//! started for the caller; then the watcher joins the upload's one feed on this
//! server (`upload_feeds`), which reads each change once for every watcher.

use std::sync::Arc;

use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use upload_domain::{Caller, UploadId};
use upload_proto::v1 as pb;

use super::WatchStream;
use crate::error::ApiError;
use crate::state::AppState;

/// Handles WatchProgress.
pub async fn handle_watch_progress(
    state: Arc<AppState>,
    caller: &Caller,
    id: UploadId,
) -> Result<WatchStream, ApiError> {
    // Not the caller's: NOT_FOUND, and no feed, subscription or task for them.
    state.owned_facts(caller, id).await?;
    let feed = state.feeds.join(&state, id);
    let mut snapshots = feed.subscribe();
    let (tx, rx) = mpsc::channel(16);
    tokio::spawn(async move {
        // Held while this watcher watches: the feed stops when its last one goes.
        let _feed = feed;
        let mut last: Option<pb::WatchProgressResponse> = None;
        loop {
            let published = snapshots.borrow_and_update().clone();
            match published {
                Some(Ok((snapshot, settled))) => {
                    if last.as_ref() != Some(&snapshot) {
                        if tx.send(Ok(snapshot.clone())).await.is_err() {
                            return;
                        }
                        last = Some(snapshot);
                    }
                    if settled {
                        return;
                    }
                }
                Some(Err(status)) => {
                    let _ = tx.send(Err(status)).await;
                    return;
                }
                None => {}
            }
            tokio::select! {
                changed = snapshots.changed() => {
                    // The feed ended after its last snapshot, which was read above.
                    if changed.is_err() {
                        return;
                    }
                }
                () = tx.closed() => return,
            }
        }
    });
    Ok(Box::pin(ReceiverStream::new(rx)))
}
