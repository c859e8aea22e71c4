#![doc = include_str!("../README.md")]

pub mod media;
pub mod metadata;
pub mod notify;
pub mod outcome;
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
use upload_db::DbPool;
use upload_db::jobs::{NotifyJob, Queue, UploadJob};
use upload_storage::Store;

/// What every job needs.
pub struct JobContext {
    /// Database pool.
    pub pool: DbPool,
    /// Object store.
    pub store: Store,
    /// ffmpeg and ffprobe, with their limits.
    pub media: media::Media,
    /// Webhook client.
    pub http: reqwest::Client,
    /// Attempts, delays, scanner, policy.
    pub config: WorkerConfig,
}

impl JobContext {
    /// Connects to the database and builds the clients `config` names.
    pub async fn connect(config: WorkerConfig) -> anyhow::Result<Self> {
        let pool = upload_db::connect_pool(&config.database.url, config.database.pool_size).await?;
        Ok(Self {
            pool,
            store: Store::new(&config.store),
            media: media::Media::new(config.media.clone()),
            http: reqwest::Client::builder()
                .connect_timeout(Duration::from_secs(5))
                .build()?,
            config,
        })
    }
}

// The job functions are boxed: they hold diesel-async transactions whose Send-ness
// the compiler cannot prove through apalis's higher-ranked bounds otherwise.

async fn run_scan(job: UploadJob, ctx: Data<Arc<JobContext>>) -> Result<(), BoxDynError> {
    use futures::FutureExt;
    let result = scan::run(&ctx, job).boxed().await;
    outcome::settle(&ctx, Queue::Scan, job, result)
        .boxed()
        .await
}

async fn run_metadata(job: UploadJob, ctx: Data<Arc<JobContext>>) -> Result<(), BoxDynError> {
    use futures::FutureExt;
    let result = metadata::run(&ctx, job).boxed().await;
    outcome::settle(&ctx, Queue::Metadata, job, result)
        .boxed()
        .await
}

async fn run_preview(job: UploadJob, ctx: Data<Arc<JobContext>>) -> Result<(), BoxDynError> {
    use futures::FutureExt;
    let result = preview::run(&ctx, job).boxed().await;
    outcome::settle(&ctx, Queue::Preview, job, result)
        .boxed()
        .await
}

async fn run_notify(job: NotifyJob, ctx: Data<Arc<JobContext>>) -> Result<(), BoxDynError> {
    use futures::FutureExt;
    notify::run(&ctx, job).boxed().await
}

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
    let (c1, c2, c3, c4) = (
        Arc::clone(&ctx),
        Arc::clone(&ctx),
        Arc::clone(&ctx),
        Arc::clone(&ctx),
    );
    let (p1, p2, p3, p4) = (
        queue_pool.clone(),
        queue_pool.clone(),
        queue_pool.clone(),
        queue_pool.clone(),
    );
    let (n1, n2, n3, n4) = (
        name(Queue::Scan),
        name(Queue::Metadata),
        name(Queue::Preview),
        name(Queue::Notify),
    );
    let monitor = Monitor::new()
        .register(move |_| {
            WorkerBuilder::new(n1.clone())
                .backend(storage::<UploadJob>(&p1, Queue::Scan, concurrency).with_pubsub())
                .data(Arc::clone(&c1))
                .concurrency(concurrency)
                .build(run_scan)
        })
        .register(move |_| {
            WorkerBuilder::new(n2.clone())
                .backend(storage::<UploadJob>(&p2, Queue::Metadata, concurrency).with_pubsub())
                .data(Arc::clone(&c2))
                .concurrency(concurrency)
                .build(run_metadata)
        })
        .register(move |_| {
            WorkerBuilder::new(n3.clone())
                .backend(storage::<UploadJob>(&p3, Queue::Preview, concurrency).with_pubsub())
                .data(Arc::clone(&c3))
                .concurrency(concurrency)
                .build(run_preview)
        })
        .register(move |_| {
            WorkerBuilder::new(n4.clone())
                .backend(storage::<NotifyJob>(&p4, Queue::Notify, concurrency).with_pubsub())
                .data(Arc::clone(&c4))
                .concurrency(concurrency)
                .build(run_notify)
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
