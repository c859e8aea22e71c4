#![doc = include_str!("../README.md")]
//!
//! Where things live: `context` what every job needs; `job` the one generic
//! handler (run, then retry or fail the subject); `outcome` retry/abort and how
//! uploads and submissions fail; one file per job (`scan`, `metadata`, `preview`,
//! `notify`, `persist`, `move_file`) with `processing` and `progress` shared by the
//! pipeline's jobs and `media` running ffmpeg; `sweep` the sweeper loop.

mod context;
pub mod job;
pub mod media;
pub mod metadata;
pub mod move_file;
pub mod notify;
pub mod outcome;
pub mod persist;
pub mod preview;
mod processing;
mod progress;
pub mod scan;
pub mod sweep;

use std::sync::Arc;
use std::time::Duration;

use apalis::prelude::*;
use apalis_postgres::{Config, PostgresStorage};
use upload_config::WorkerConfig;
use upload_db::jobs::Queue;

pub use context::JobContext;
use job::{Job, run_job};

/// The queue's storage, named explicitly. Callers add pub/sub, which wakes the
/// worker as soon as a job is inserted (plain polling would wait for the 30 s
/// heartbeat).
fn storage<J>(pool: &sqlx::PgPool, queue: Queue, batch: usize) -> PostgresStorage<J>
where
    J: serde::Serialize + serde::de::DeserializeOwned + Send + Sync + Unpin + 'static,
{
    PostgresStorage::<J>::new(pool).with_config(
        Config::default()
            .queue(queue.name())
            .batch_size(batch)
            .heartbeat_interval(Duration::from_secs(5))
            .missed_heartbeats(3),
    )
}

/// Runs every queue's worker until `shutdown` resolves.
pub async fn run(
    config: WorkerConfig,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let queue_pool = sqlx::postgres::PgPoolOptions::new()
        .max_connections(10)
        .connect(&config.database.url)
        .await?;
    let concurrency = config.concurrency;
    let ctx = Arc::new(JobContext::connect(config).await?);
    let sweeper = tokio::spawn(sweep::sweep_forever(
        Arc::clone(&ctx),
        ctx.config.sweep_interval,
        ctx.config.stuck_after,
    ));
    let worker_name = format!("upload-worker-{}", uuid::Uuid::now_v7());
    let name = move |queue: Queue| format!("{worker_name}-{}", queue.name());
    // One worker per queue, each with its own handles, all running the one generic
    // handler. The worker types differ per job, hence a macro rather than a function.
    macro_rules! queue_worker {
        ($job:ty) => {{
            let queue = <$job as Job>::QUEUE;
            let (ctx, pool, name) = (Arc::clone(&ctx), queue_pool.clone(), name(queue));
            move |_| {
                WorkerBuilder::new(name.clone())
                    .backend(
                        storage::<<$job as Job>::Payload>(&pool, queue, concurrency).with_pubsub(),
                    )
                    .data(Arc::clone(&ctx))
                    .concurrency(concurrency)
                    .build(run_job::<$job>)
            }
        }};
    }
    let monitor = Monitor::new()
        .register(queue_worker!(scan::Scan))
        .register(queue_worker!(metadata::Metadata))
        .register(queue_worker!(preview::Preview))
        .register(queue_worker!(notify::Notify))
        .register(queue_worker!(persist::Persist))
        .register(queue_worker!(move_file::Move));
    monitor
        .shutdown_timeout(Duration::from_secs(30))
        .run_with_signal(async move {
            shutdown.await;
            Ok(())
        })
        .await?;
    sweeper.abort();
    Ok(())
}
