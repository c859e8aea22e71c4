//! WatchProgress: the upload's snapshot at once, then again at each change, until
//! it settles or the client goes away. Ownership is checked before anything is
//! started for the caller; then the watcher joins the upload's one feed on this
//! server (`upload_feeds`), which reads each change once for every watcher.

use std::sync::Arc;

use upload_domain::{Caller, UploadId};

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
    let snapshots = feed.subscribe();
    // No task or channel of its own: the stream reads the feed's latest snapshot
    // when the client is ready for it (the feed sends only snapshots that differ),
    // and holds the feed while it lasts, so the feed stops when its last one goes.
    let stream = futures::stream::unfold(Some((snapshots, feed, true)), |state| async move {
        let (mut snapshots, feed, first) = state?;
        // The latest snapshot at once, then each one the feed sends after it.
        if !first {
            // The feed ended after its last snapshot, which was sent before.
            snapshots.changed().await.ok()?;
        }
        loop {
            let published = snapshots.borrow_and_update().clone();
            match published {
                Some(Ok((snapshot, settled))) => {
                    let next = (!settled).then_some((snapshots, feed, false));
                    return Some((Ok(snapshot), next));
                }
                Some(Err(status)) => return Some((Err(status), None)),
                // Nothing read yet: wait for the feed's first snapshot.
                None => snapshots.changed().await.ok()?,
            }
        }
    });
    Ok(Box::pin(stream))
}
