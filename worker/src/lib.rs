#![doc = include_str!("../README.md")]

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
use upload_db::DbPool;
use upload_db::jobs::{NotifyJob, Queue, SubmissionJob, UploadJob};
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

async fn run_persist(job: SubmissionJob, ctx: Data<Arc<JobContext>>) -> Result<(), BoxDynError> {
    use futures::FutureExt;
    let result = persist::run(&ctx, job).boxed().await;
    outcome::settle_submission(&ctx, Queue::Persist, job, result)
        .boxed()
        .await
}

async fn run_move(job: SubmissionJob, ctx: Data<Arc<JobContext>>) -> Result<(), BoxDynError> {
    use futures::FutureExt;
    let result = move_file::run(&ctx, job).boxed().await;
    outcome::settle_submission(&ctx, Queue::Move, job, result)
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
    // One worker per queue, each with its own handles; the job types differ, hence
    // a macro rather than a function.
    macro_rules! queue_worker {
        ($job:ty, $queue:expr, $run:expr) => {{
            let (ctx, pool, name) = (Arc::clone(&ctx), queue_pool.clone(), name($queue));
            move |_| {
                WorkerBuilder::new(name.clone())
                    .backend(storage::<$job>(&pool, $queue, concurrency).with_pubsub())
                    .data(Arc::clone(&ctx))
                    .concurrency(concurrency)
                    .build($run)
            }
        }};
    }
    let monitor = Monitor::new()
        .register(queue_worker!(UploadJob, Queue::Scan, run_scan))
        .register(queue_worker!(UploadJob, Queue::Metadata, run_metadata))
        .register(queue_worker!(UploadJob, Queue::Preview, run_preview))
        .register(queue_worker!(NotifyJob, Queue::Notify, run_notify))
        .register(queue_worker!(SubmissionJob, Queue::Persist, run_persist))
        .register(queue_worker!(SubmissionJob, Queue::Move, run_move));
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
