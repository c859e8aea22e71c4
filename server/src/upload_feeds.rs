//! One feed per watched upload per server: whoever watches an upload, and however
//! many do, one task reads its snapshot at each change (heard from the progress
//! hub) and, while the upload takes parts, asks the store how far it is every
//! `UPLOAD_PROGRESS_REFRESH_MS`; every watcher of it receives that one task's
//! snapshots, and reads again before the preview URLs it signed have lived half
//! their time. The feed stops when its last watcher goes, or when the upload
//! settles (its last snapshot stays readable by those who hold it; a new watcher
//! starts a new feed). Callers check ownership before they join a feed: a feed
//! reads for whoever may watch it.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError, Weak};

use prometheus_client::metrics::gauge::Gauge;
use tokio::sync::watch;
use upload_assembly::{inspect_parts, record_upload_progress};
use upload_domain::UploadId;
use upload_proto::v1 as pb;

use crate::error::ApiError;
use crate::progress_hub;
use crate::snapshot::UploadSnapshot;
use crate::state::AppState;

/// What a feed publishes: nothing yet, a snapshot (and whether the upload has
/// settled), or the error that ended it.
pub type Published = Option<Result<(pb::WatchProgressResponse, bool), tonic::Status>>;

/// One upload's feed, held by each of its watchers; the task stops when the last
/// one lets go.
pub struct Feed {
    snapshots: watch::Receiver<Published>,
    task: tokio::task::JoinHandle<()>,
    open: Gauge,
}

impl Drop for Feed {
    fn drop(&mut self) {
        self.task.abort();
        self.open.dec();
    }
}

impl Feed {
    /// A receiver of the feed's snapshots, the latest one first.
    pub fn subscribe(&self) -> watch::Receiver<Published> {
        self.snapshots.clone()
    }
}

/// The feeds of this server, by upload.
#[derive(Clone, Default)]
pub struct UploadFeeds {
    feeds: Arc<Mutex<HashMap<UploadId, Weak<Feed>>>>,
    open: Gauge,
}

impl UploadFeeds {
    /// Feeds that count themselves in `open` (`upload_watch_feeds`) while they run.
    pub fn counted_in(open: Gauge) -> Self {
        Self {
            feeds: Arc::default(),
            open,
        }
    }

    /// The feed of upload `id`, started if no one watches it yet. The caller has
    /// checked that its caller may watch it.
    pub fn join(&self, state: &Arc<AppState>, id: UploadId) -> Arc<Feed> {
        let mut feeds = self.feeds.lock().unwrap_or_else(PoisonError::into_inner);
        // A feed that has ended (settled, failed, or cut off from the hub) is not
        // joined: its last snapshot may be old, and a new feed reads again.
        if let Some(feed) = feeds.get(&id).and_then(Weak::upgrade)
            && !feed.task.is_finished()
        {
            return feed;
        }
        // Feeds nobody holds any more go here, as new ones come: the map stays
        // as large as what is watched.
        feeds.retain(|_, feed| feed.strong_count() > 0);
        let (tx, rx) = watch::channel(None);
        self.open.inc();
        let feed = Arc::new(Feed {
            snapshots: rx,
            task: tokio::spawn(run(Arc::clone(state), id, tx)),
            open: self.open.clone(),
        });
        feeds.insert(id, Arc::downgrade(&feed));
        feed
    }
}

/// The snapshot of upload `id`, read for the feed, and whether it has settled.
async fn read(
    state: &AppState,
    id: UploadId,
) -> Result<(pb::WatchProgressResponse, bool), ApiError> {
    let snapshot = UploadSnapshot::load_for_watchers(state, id).await?;
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

fn uploading(last: &pb::WatchProgressResponse) -> bool {
    last.upload.as_ref().is_some_and(|u| {
        u.state == pb::UploadState::Created as i32 || u.state == pb::UploadState::Uploading as i32
    })
}

/// The bytes travel straight to the store, so only the store knows how far an
/// unfinished upload is: ask it, and record what changed (the write notifies every
/// feed of it, on every replica).
async fn refresh_upload_progress(state: &AppState, id: UploadId, last: &pb::WatchProgressResponse) {
    let result = async {
        let mut conn = state.pool.get().await.map_err(upload_db::DbError::from)?;
        let Some(row) = upload_db::uploads::find(&mut conn, id).await? else {
            return Ok(());
        };
        drop(conn);
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

/// The feed's task: publishes the snapshot at once, then at each change, until the
/// upload settles or reading it fails (or every watcher has gone: the feed, dropped,
/// aborts it).
async fn run(state: Arc<AppState>, id: UploadId, tx: watch::Sender<Published>) {
    // Subscribed before the first read, so no change can fall between the two.
    let mut events = state.hub.subscribe(id.as_uuid());
    let mut refresh = tokio::time::interval(state.policy.progress_refresh);
    refresh.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    // Preview URLs are signed at each read: read again before they have lived half
    // their time, so that whoever joins (or is still watching) gets working ones.
    let resign = state.policy.sign_expiry / 2;
    let mut last: Option<pb::WatchProgressResponse> = None;
    loop {
        let read_at = tokio::time::Instant::now();
        match read(&state, id).await {
            Ok((snapshot, settled)) => {
                if last.as_ref() != Some(&snapshot) {
                    last = Some(snapshot.clone());
                    tx.send_replace(Some(Ok((snapshot, settled))));
                }
                if settled {
                    return;
                }
            }
            Err(e) => {
                tx.send_replace(Some(Err(e.into())));
                return;
            }
        }
        loop {
            let polling = last.as_ref().is_some_and(uploading);
            tokio::select! {
                event = events.recv() => {
                    if !progress_hub::should_reread(event) {
                        return;
                    }
                    break;
                }
                _ = refresh.tick(), if polling => {
                    if let Some(shown) = &last {
                        refresh_upload_progress(&state, id, shown).await;
                    }
                }
                () = tokio::time::sleep_until(read_at + resign) => break,
            }
        }
    }
}
