//! Group commit for signed parts. Every SignPart waits until its parts are recorded,
//! but concurrent calls share one INSERT: a flusher takes everything queued while the
//! previous statement ran. Under load this turns thousands of small transactions
//! into a few large ones; alone, a call pays one round trip as before.

use std::collections::HashSet;
use std::sync::Arc;

use tokio::sync::{Mutex, mpsc, oneshot};
use upload_db::DbPool;
use upload_db::uploads::{self, SignedPartRecord};
use uuid::Uuid;

use crate::error::ApiError;

type Recorded = Result<HashSet<(Uuid, i32)>, String>;

struct Request {
    parts: Vec<SignedPartRecord>,
    done: oneshot::Sender<Recorded>,
}

/// Handle to the flushers; cheap to clone.
#[derive(Clone)]
pub struct PartRecorder {
    tx: mpsc::Sender<Request>,
}

/// The most parts one statement carries.
const MAX_BATCH_PARTS: usize = 4096;

impl PartRecorder {
    /// Starts `flushers` tasks writing through `pool`.
    pub fn start(pool: DbPool, flushers: usize) -> Self {
        let (tx, rx) = mpsc::channel::<Request>(8192);
        let rx = Arc::new(Mutex::new(rx));
        for _ in 0..flushers.max(1) {
            let rx = Arc::clone(&rx);
            let pool = pool.clone();
            tokio::spawn(async move {
                loop {
                    let batch = {
                        let mut rx = rx.lock().await;
                        let Some(first) = rx.recv().await else { return };
                        let mut batch = vec![first];
                        let mut parts = batch[0].parts.len();
                        while parts < MAX_BATCH_PARTS {
                            match rx.try_recv() {
                                Ok(next) => {
                                    parts += next.parts.len();
                                    batch.push(next);
                                }
                                Err(_) => break,
                            }
                        }
                        batch
                    };
                    flush(&pool, batch).await;
                }
            });
        }
        Self { tx }
    }

    /// Records `parts`, returning those whose upload still accepted parts.
    pub async fn record(
        &self,
        parts: Vec<SignedPartRecord>,
    ) -> Result<HashSet<(Uuid, i32)>, ApiError> {
        let (done, wait) = oneshot::channel();
        self.tx
            .send(Request { parts, done })
            .await
            .map_err(|_| ApiError::Unavailable("part recorder stopped".into()))?;
        wait.await
            .map_err(|_| ApiError::Unavailable("part recorder stopped".into()))?
            .map_err(ApiError::Unavailable)
    }
}

async fn flush(pool: &DbPool, batch: Vec<Request>) {
    let all: Vec<SignedPartRecord> = batch.iter().flat_map(|r| r.parts.iter().cloned()).collect();
    let result = async {
        let mut conn = pool.get().await.map_err(|e| e.to_string())?;
        uploads::record_signed_parts(&mut conn, &all)
            .await
            .map(|rows| rows.into_iter().collect::<HashSet<_>>())
            .map_err(|e| e.to_string())
    }
    .await;
    for request in batch {
        // A caller that went away no longer needs its answer.
        let _ = request.done.send(result.clone());
    }
}
