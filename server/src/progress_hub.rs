//! One LISTEN connection per server process, fanned out to the watchers of each
//! upload or item (the payload is its id). Any replica can serve any upload's
//! progress, because the workers and the other replicas announce every change
//! through PostgreSQL.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use diesel_async::RunQueryDsl;
use futures::StreamExt;
use tokio::sync::broadcast;
use upload_db::UPLOAD_EVENTS_CHANNEL;
use uuid::Uuid;

/// What a watcher hears.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HubEvent {
    /// The upload changed.
    Changed,
    /// The listener reconnected and may have missed changes: re-read.
    Resync,
}

type Watchers = Arc<Mutex<HashMap<Uuid, broadcast::Sender<HubEvent>>>>;

/// Map size from which `subscribe` prunes abandoned channels.
const PRUNE_AT: usize = 1024;

/// Subscriptions to upload changes.
#[derive(Clone)]
pub struct ProgressHub {
    watchers: Watchers,
}

impl ProgressHub {
    /// Starts listening on `database_url`; reconnects by itself. Through `pool`
    /// it announces itself every [`HEARTBEAT`], so that a listening connection that
    /// went silent (a dead peer with no reset) is noticed and replaced.
    pub fn start(database_url: String, pool: upload_db::DbPool) -> Self {
        let watchers: Watchers = Arc::default();
        tokio::spawn(listen_forever(database_url, Arc::downgrade(&watchers)));
        tokio::spawn(heartbeat(pool, Arc::downgrade(&watchers)));
        Self { watchers }
    }

    /// Subscribes to the changes of one upload or item.
    pub fn subscribe(&self, id: Uuid) -> broadcast::Receiver<HubEvent> {
        let mut map = self.watchers.lock().unwrap_or_else(PoisonError::into_inner);
        // Channels whose watchers all left are dropped here, now and then, so the map
        // stays bounded without scanning it on every notification.
        if map.len() >= PRUNE_AT && map.len().is_power_of_two() {
            map.retain(|_, tx| tx.receiver_count() > 0);
        }
        map.entry(id)
            .or_insert_with(|| broadcast::channel(64).0)
            .subscribe()
    }
}

/// True when a watcher should re-read what it watches after `event`: on every
/// change, resync or lag; false once the hub itself is gone.
pub fn should_reread(event: Result<HubEvent, broadcast::error::RecvError>) -> bool {
    !matches!(event, Err(broadcast::error::RecvError::Closed))
}

/// Sends a re-read snapshot to a watch stream when it differs from the last one
/// sent. `next` carries whether the watched thing has settled. Returns false when
/// the stream is over: the watcher left, the thing settled, or reading it failed
/// (the error is sent as the stream's last item).
pub async fn forward<T: Clone + PartialEq>(
    tx: &tokio::sync::mpsc::Sender<Result<T, tonic::Status>>,
    last: &mut T,
    next: Result<(T, bool), crate::error::ApiError>,
) -> bool {
    match next {
        Ok((next, settled)) => {
            if next != *last {
                *last = next.clone();
                if tx.send(Ok(next)).await.is_err() {
                    return false;
                }
            }
            !settled
        }
        Err(e) => {
            let _ = tx.send(Err(e.into())).await;
            false
        }
    }
}

fn deliver(watchers: &Watchers, id: Option<Uuid>, event: HubEvent) {
    let mut map = watchers.lock().unwrap_or_else(PoisonError::into_inner);
    match id {
        Some(id) => {
            // A send fails only when every watcher of the upload has left.
            if map.get(&id).is_some_and(|tx| tx.send(event).is_err()) {
                map.remove(&id);
            }
        }
        None => map.retain(|_, tx| tx.send(event).is_ok()),
    }
}

/// How often the hub notifies its own channel, proving the listener alive.
pub const HEARTBEAT: Duration = Duration::from_secs(5);
/// A listener that heard nothing (not even a heartbeat) this long reconnects.
const SILENCE: Duration = Duration::from_secs(16);
/// How long connecting and starting to listen may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// The payload of a heartbeat: not an id, so no watcher hears it.
const HEARTBEAT_PAYLOAD: &str = "progress-hub-alive";

/// Notifies the channel every [`HEARTBEAT`] until the hub is dropped; best effort.
async fn heartbeat(
    pool: upload_db::DbPool,
    watchers: std::sync::Weak<Mutex<HashMap<Uuid, broadcast::Sender<HubEvent>>>>,
) {
    let mut tick = tokio::time::interval(HEARTBEAT);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        if watchers.strong_count() == 0 {
            return;
        }
        let sent = async {
            let mut conn = pool.get().await.map_err(|e| e.to_string())?;
            diesel::sql_query("SELECT pg_notify($1, $2)")
                .bind::<diesel::sql_types::Text, _>(UPLOAD_EVENTS_CHANNEL)
                .bind::<diesel::sql_types::Text, _>(HEARTBEAT_PAYLOAD)
                .execute(&mut conn)
                .await
                .map_err(|e| e.to_string())
        }
        .await;
        if let Err(e) = sent {
            tracing::debug!(error = %e, "progress hub heartbeat not sent");
        }
    }
}

/// Listens until the hub is dropped (the server stopped), reconnecting on errors.
async fn listen_forever(
    url: String,
    watchers: std::sync::Weak<Mutex<HashMap<Uuid, broadcast::Sender<HubEvent>>>>,
) {
    let mut backoff = Duration::from_millis(100);
    loop {
        let Some(live) = watchers.upgrade() else {
            return;
        };
        let result = listen(&url, &live).await;
        drop(live);
        if watchers.strong_count() == 0 {
            return;
        }
        match result {
            Ok(()) => tracing::warn!("progress listener connection closed; reconnecting"),
            Err(e) => tracing::warn!(error = %e, "progress listener failed; reconnecting"),
        }
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(Duration::from_secs(5));
    }
}

async fn listen(url: &str, watchers: &Watchers) -> Result<(), diesel::result::Error> {
    // A peer that accepts and then says nothing must not hold the listener forever.
    let setup = async {
        let mut conn = upload_db::establish(url)
            .await
            .map_err(|e| diesel::result::Error::QueryBuilderError(Box::new(e)))?;
        diesel::sql_query(format!("LISTEN {UPLOAD_EVENTS_CHANNEL}"))
            .execute(&mut conn)
            .await?;
        Ok::<_, diesel::result::Error>(conn)
    };
    let mut conn = tokio::time::timeout(CONNECT_TIMEOUT, setup)
        .await
        .map_err(|_| {
            diesel::result::Error::QueryBuilderError(
                format!("no listening connection within {CONNECT_TIMEOUT:?}").into(),
            )
        })??;
    // Anything that happened while we were not listening is unknown: everyone re-reads.
    deliver(watchers, None, HubEvent::Resync);
    let mut notifications = std::pin::pin!(conn.notifications_stream());
    let mut alive = tokio::time::interval(Duration::from_secs(1));
    let mut heard = tokio::time::Instant::now();
    loop {
        tokio::select! {
            n = notifications.next() => {
                let Some(n) = n else { return Ok(()) };
                heard = tokio::time::Instant::now();
                if let Ok(id) = n?.payload.parse::<Uuid>() {
                    deliver(watchers, Some(id), HubEvent::Changed);
                }
            }
            _ = alive.tick() => {
                // Stop listening once the hub itself is gone.
                if Arc::strong_count(watchers) == 1 {
                    return Ok(());
                }
                // Not even our own heartbeat came through: the connection is dead.
                if heard.elapsed() > SILENCE {
                    return Err(diesel::result::Error::QueryBuilderError(
                        format!("the listening connection was silent for {SILENCE:?}").into(),
                    ));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_reach_only_the_upload_watched_and_abandoned_channels_go() {
        let hub = ProgressHub {
            watchers: Arc::default(),
        };
        let (a, b) = (Uuid::now_v7(), Uuid::now_v7());
        let mut watch_a = hub.subscribe(a);
        let watch_b = hub.subscribe(b);

        deliver(&hub.watchers, Some(a), HubEvent::Changed);
        assert_eq!(watch_a.try_recv(), Ok(HubEvent::Changed));
        assert!(watch_a.try_recv().is_err(), "one event per notification");

        drop(watch_b);
        deliver(&hub.watchers, Some(b), HubEvent::Changed);
        assert!(
            !hub.watchers.lock().unwrap().contains_key(&b),
            "b had no watcher left"
        );

        deliver(&hub.watchers, None, HubEvent::Resync);
        assert_eq!(watch_a.try_recv(), Ok(HubEvent::Resync));
    }
}
