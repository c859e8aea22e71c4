//! One listener per worker process for the database's "a job was inserted"
//! notifications (apalis sends every queue's on one channel), fanned out to the
//! queues this process runs: one connection for all of them instead of one per
//! queue. A queue is woken to fetch; what it fetches is decided by the table, so a
//! wake-up lost or doubled costs at most a poll (each queue also polls every few
//! seconds whatever it hears). After the connection drops and comes back, every
//! queue is woken: jobs may have been inserted meanwhile.

use std::collections::HashMap;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::sync::mpsc;
use upload_db::jobs::Queue;

/// The channel apalis notifies on, with `{"job_type": ..., "id": ...}`.
const CHANNEL: &str = "apalis::job::insert";

/// The part of a notification read here.
#[derive(serde::Deserialize)]
struct Inserted {
    job_type: String,
}

/// The queues' wake-up senders, replaced when a queue's worker restarts.
#[derive(Clone, Default)]
pub struct Wakeups {
    senders: Arc<Mutex<HashMap<Queue, mpsc::Sender<()>>>>,
}

/// A queue's wake-ups, as the stream its poll strategy waits on.
pub struct WakeupStream(Mutex<mpsc::Receiver<()>>);

impl futures::Stream for WakeupStream {
    type Item = ();

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<()>> {
        self.get_mut()
            .0
            .get_mut()
            .unwrap_or_else(PoisonError::into_inner)
            .poll_recv(cx)
    }
}

impl Wakeups {
    /// A fresh stream of `queue`'s wake-ups (the one before stops hearing).
    pub fn subscribe(&self, queue: Queue) -> WakeupStream {
        // One pending wake-up is enough: more would only repeat the same fetch.
        let (tx, rx) = mpsc::channel(1);
        self.senders
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(queue, tx);
        WakeupStream(Mutex::new(rx))
    }

    /// Wakes `queue`, if this process runs it.
    fn wake(&self, queue: Queue) {
        if let Some(tx) = self
            .senders
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(&queue)
        {
            let _ = tx.try_send(());
        }
    }

    fn wake_all(&self) {
        for tx in self
            .senders
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .values()
        {
            let _ = tx.try_send(());
        }
    }

    /// What a notification's payload wakes: the queue it names, if it is one.
    fn heard(&self, payload: &str) {
        let queue = serde_json::from_str::<Inserted>(payload)
            .ok()
            .and_then(|i| i.job_type.parse::<Queue>().ok());
        match queue {
            Some(queue) => self.wake(queue),
            None => tracing::debug!(payload, "a job notification naming no queue; ignored"),
        }
    }

    /// Listens on `pool` (one connection) for as long as the process runs,
    /// reconnecting after a doubling delay up to 10 s when the database goes away.
    pub async fn listen(self, pool: sqlx::PgPool) {
        let mut delay = Duration::from_millis(250);
        loop {
            let listening = async {
                let mut listener = sqlx::postgres::PgListener::connect_with(&pool).await?;
                listener.listen(CHANNEL).await?;
                Ok::<_, sqlx::Error>(listener)
            };
            let mut listener = match listening.await {
                Ok(listener) => listener,
                Err(e) => {
                    tracing::warn!(error = %e, ?delay, "job notifications: cannot listen; trying again");
                    tokio::time::sleep(delay).await;
                    delay = (delay * 2).min(Duration::from_secs(10));
                    continue;
                }
            };
            delay = Duration::from_millis(250);
            // Inserted while nobody listened: every queue looks.
            self.wake_all();
            loop {
                match listener.try_recv().await {
                    Ok(Some(notification)) => self.heard(notification.payload()),
                    // The connection was lost; the next call reconnects.
                    Ok(None) => {
                        tracing::info!("job notifications: connection lost; reconnecting");
                        self.wake_all();
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "job notifications: listening failed");
                        break;
                    }
                }
            }
            tokio::time::sleep(delay).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::StreamExt;

    #[tokio::test]
    async fn a_notification_wakes_only_the_queue_it_names() {
        let wakeups = Wakeups::default();
        let mut scan = wakeups.subscribe(Queue::Scan);
        let mut moves = wakeups.subscribe(Queue::Move);
        wakeups.heard(r#"{"job_type":"upload.scan","id":"x"}"#);
        wakeups.heard(r#"{"job_type":"upload.scan","id":"y"}"#);
        wakeups.heard(r#"{"job_type":"nobody.knows","id":"z"}"#);
        wakeups.heard("not json");
        assert_eq!(scan.next().await, Some(()));
        // Two inserts, one wake-up: the fetch takes both.
        let again = tokio::time::timeout(Duration::from_millis(50), scan.next()).await;
        assert!(again.is_err(), "woken once");
        let moved = tokio::time::timeout(Duration::from_millis(50), moves.next()).await;
        assert!(moved.is_err(), "the move queue was not named");
        wakeups.wake_all();
        assert_eq!(moves.next().await, Some(()));
    }

    #[tokio::test]
    async fn a_restarted_queue_hears_on_its_new_stream() {
        let wakeups = Wakeups::default();
        let old = wakeups.subscribe(Queue::Notify);
        let mut new = wakeups.subscribe(Queue::Notify);
        drop(old);
        wakeups.heard(r#"{"job_type":"upload.notify","id":"x"}"#);
        assert_eq!(new.next().await, Some(()));
    }
}
