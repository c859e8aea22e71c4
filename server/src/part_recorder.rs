//! Group commit for signed parts. Every SignPart waits until its parts are recorded,
//! but concurrent calls share one INSERT: a flusher takes everything queued while the
//! previous statement ran. Under load this turns thousands of small transactions
//! into a few large ones; alone, a call pays one round trip as before.

use std::collections::HashSet;
use std::sync::Arc;

use tokio::sync::{Mutex, mpsc, oneshot};
use upload_db::DbPool;
use upload_db::uploads::{self, SignedPartRecord};
use upload_domain::UploadId;

use crate::error::ApiError;

type Recorded = Result<HashSet<(UploadId, i32)>, String>;

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
    ) -> Result<HashSet<(UploadId, i32)>, ApiError> {
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

/// One record per (upload, part): the same part signed twice in one batch (a client
/// re-signing while the first call is in flight) keeps the later signature, since
/// one INSERT ... ON CONFLICT may not touch a row twice.
fn latest_per_part(batch: &[Request]) -> Vec<SignedPartRecord> {
    let mut latest: std::collections::HashMap<(UploadId, i32), &SignedPartRecord> =
        std::collections::HashMap::new();
    for part in batch.iter().flat_map(|r| r.parts.iter()) {
        latest.insert((part.upload_id, part.part_number), part);
    }
    latest.into_values().cloned().collect()
}

async fn flush(pool: &DbPool, batch: Vec<Request>) {
    let all = latest_per_part(&batch);
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

#[cfg(test)]
mod tests {
    use super::*;

    fn record(upload: UploadId, part: i32, md5: u8) -> SignedPartRecord {
        SignedPartRecord {
            upload_id: upload,
            part_number: part,
            pin: upload_domain::PartPin::Md5(
                upload_domain::Md5Digest::from_bytes(&[md5; 16]).unwrap(),
            ),
            size_bytes: 5,
            signed_by: "seller:s-1".into(),
        }
    }

    #[test]
    fn a_part_signed_twice_in_one_batch_keeps_the_later_signature() {
        let upload = UploadId::new();
        let (done, _) = oneshot::channel();
        let (done2, _) = oneshot::channel();
        let batch = vec![
            Request {
                parts: vec![record(upload, 1, 1), record(upload, 2, 1)],
                done,
            },
            Request {
                parts: vec![record(upload, 1, 9)],
                done: done2,
            },
        ];
        let mut out = latest_per_part(&batch);
        out.sort_by_key(|r| r.part_number);
        assert_eq!(out.len(), 2);
        assert_eq!(out[0].pin.md5().map(|d| *d.as_bytes()), Some([9; 16]));
    }
}
