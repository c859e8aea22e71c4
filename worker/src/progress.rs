//! Throttled progress writes: a long read reports often enough to look alive, but
//! does not turn every chunk into a database write.

use std::time::{Duration, Instant};

use upload_db::DbPool;
use upload_domain::{Stage, StageStatus, UploadId};

/// Writes the progress of stages that advance together (one read feeds the scan
/// and the hashes) at most every `every`.
pub struct ProgressReporter {
    pool: DbPool,
    upload: UploadId,
    stages: Vec<Stage>,
    total: u64,
    every: Duration,
    last: Option<Instant>,
}

impl ProgressReporter {
    /// A reporter for `stages` of `upload`, out of `total` bytes.
    pub fn new(pool: DbPool, upload: UploadId, stages: &[Stage], total: u64) -> Self {
        Self {
            pool,
            upload,
            stages: stages.to_vec(),
            total,
            every: Duration::from_millis(250),
            last: None,
        }
    }

    /// Reports `done` bytes if enough time has passed since the last report.
    /// Progress is best effort: a failed write is logged, never fatal.
    pub async fn advance(&mut self, done: u64) {
        if self.last.is_some_and(|t| t.elapsed() < self.every) {
            return;
        }
        self.last = Some(Instant::now());
        self.write(StageStatus::Running, done, "").await;
    }

    /// Reports bytes done from `done` until its sender is dropped, throttled.
    pub async fn follow(&mut self, mut done: tokio::sync::watch::Receiver<u64>) {
        self.advance(0).await;
        while done.changed().await.is_ok() {
            let value = *done.borrow_and_update();
            self.advance(value).await;
        }
    }

    /// Reports the stage's final status.
    pub async fn finish(&mut self, status: StageStatus, done: u64, detail: &str) {
        self.write(status, done, detail).await;
    }

    async fn write(&self, status: StageStatus, done: u64, detail: &str) {
        let result = async {
            let mut conn = self.pool.get().await?;
            for stage in &self.stages {
                upload_db::progress::set(
                    &mut conn,
                    self.upload,
                    *stage,
                    status,
                    done,
                    self.total,
                    detail,
                )
                .await?;
            }
            Ok::<_, upload_db::DbError>(())
        }
        .await;
        if let Err(e) = result {
            tracing::warn!(upload = %self.upload, error = %e, "progress write failed");
        }
    }
}
