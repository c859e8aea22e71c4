#![doc = include_str!("../README.md")]

pub mod metadata;
pub mod outcome;
mod progress;
pub mod sweep;

use std::sync::Arc;
use std::time::Duration;

use apalis::prelude::*;
use apalis_postgres::{Config, PostgresStorage};
use upload_config::WorkerConfig;
use upload_db::DbPool;
use upload_db::jobs::{Queue, UploadJob};
use upload_storage::Store;

/// What every job needs.
pub struct JobContext {
    /// Database pool.
    pub pool: DbPool,
    /// Object store.
    pub store: Store,
    /// Attempts and delays.
    pub config: WorkerConfig,
}

async fn run_metadata(job: UploadJob, ctx: Data<Arc<JobContext>>) -> Result<(), BoxDynError> {
    use futures::FutureExt;
    // Boxed: the job futures hold diesel-async transactions whose Send-ness the
    // compiler cannot prove through apalis's higher-ranked bounds otherwise.
    let result = metadata::run(&ctx, job).boxed().await;
    outcome::settle(&ctx, Queue::Metadata, job, result)
        .boxed()
        .await
}

/// Runs every queue's worker until `shutdown` resolves.
pub async fn run(
    config: WorkerConfig,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let pool = upload_db::connect_pool(&config.database.url, config.database.pool_size).await?;
    let queue_pool = sqlx::postgres::PgPoolOptions::new()
        .max_connections(4)
        .connect(&config.database.url)
        .await?;
    let concurrency = config.concurrency;
    let ctx = Arc::new(JobContext {
        pool,
        store: Store::new(&config.store),
        config,
    });
    let sweeper = tokio::spawn(sweep::sweep_forever(
        Arc::clone(&ctx),
        ctx.config.sweep_interval,
        ctx.config.stuck_after,
    ));
    let worker_name = format!("upload-worker-{}", uuid::Uuid::now_v7());
    let monitor = Monitor::new().register(move |_| {
        // The queue is named explicitly; pub/sub wakes the worker as soon as a job is
        // inserted (plain polling would wait for the 30 s heartbeat).
        let storage = PostgresStorage::<UploadJob>::new(&queue_pool)
            .with_config(
                Config::default()
                    .queue(Queue::Metadata.name())
                    .batch_size(concurrency)
                    .heartbeat_interval(Duration::from_secs(5))
                    .missed_heartbeats(3),
            )
            .with_pubsub();
        WorkerBuilder::new(format!("{worker_name}-{}", Queue::Metadata.name()))
            .backend(storage)
            .data(Arc::clone(&ctx))
            .concurrency(concurrency)
            .build(run_metadata)
    });
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
