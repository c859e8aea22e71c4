#![doc = include_str!("../README.md")]
//!
//! Where things live: `context` what every job needs; `job` the one generic
//! handler (run, then retry or fail the subject); `outcome` retry/abort and how
//! uploads and submissions fail; one file per job (`scan`, `metadata`, `preview`,
//! `notify`, `persist`, `move_file`) with `processing` and `progress` shared by the
//! pipeline's jobs, `part_hashes` the scan's part check where ETags are not MD5s,
//! and `media` running ffmpeg (here, or in `media_sandbox` as
//! another user, the sandbox's own side too); `clamd` the scanner's protocol; `archive_walk` a zip's unpacked size across nesting, beside the scan; `rescan` the signature watch and
//! the catalogue re-scans; `sweep` the sweeper loop; `supervise` the queues'
//! restarts; `wakeups` the one listener for job notifications; `metrics` what
//! Prometheus scrapes.

pub mod archive_walk;
pub mod clamd;
mod context;
pub mod failpoint;
pub mod job;
pub mod media;
pub mod media_sandbox;
pub mod metadata;
pub mod metrics;
pub mod move_file;
pub mod notify;
pub mod outcome;
mod part_hashes;
pub mod persist;
pub mod preview;
mod processing;
mod progress;
pub mod rescan;
pub mod scan;
mod supervise;
pub mod sweep;
mod wakeups;

use std::sync::Arc;
use std::time::Duration;

use apalis::prelude::*;
use apalis_postgres::{Config, PostgresStorage};
use upload_config::WorkerConfig;
use upload_db::jobs::Queue;

pub use context::JobContext;
use job::{Job, run_job};

/// How often each queue's worker tells the database it is alive (the heartbeat
/// also records finished jobs when the queue is idle).
const HEARTBEAT: Duration = Duration::from_secs(2);
/// Heartbeats a worker may miss before its running jobs are handed to another:
/// a killed worker's jobs are picked up again about six seconds later.
const MISSED_HEARTBEATS: usize = 3;

/// How often a queue fetches whatever the database's notifications said.
const POLL_EVERY: Duration = Duration::from_secs(5);

/// The queue's storage, named explicitly. It fetches as soon as the database says
/// a job was inserted (LISTEN/NOTIFY, heard by the process's one listener; plain
/// polling would wait for the 30 s heartbeat), and every [`POLL_EVERY`] whatever it
/// hears: a listening connection that a database restart ended in silence would
/// otherwise leave inserted or handed-back jobs waiting for ever.
fn storage<J>(
    pool: &sqlx::PgPool,
    queue: Queue,
    batch: usize,
    notified: wakeups::WakeupStream,
) -> PollWith<PostgresStorage<J>, Strategy>
where
    J: serde::Serialize + serde::de::DeserializeOwned + Send + Sync + Unpin + 'static,
{
    let storage = PostgresStorage::<J>::new(pool).with_config(
        Config::default()
            .queue(queue.name())
            .batch_size(batch)
            .heartbeat_interval(HEARTBEAT)
            .missed_heartbeats(MISSED_HEARTBEATS),
    );
    PollWith::new(
        storage,
        Strategy::new().stream(notified).interval(POLL_EVERY),
    )
}

/// Runs every queue's worker until `shutdown` resolves. Each queue's worker is
/// supervised: a worker that stops on an error (its database went away) is started
/// again under a fresh name, after a delay that doubles up to 10 s; its unfinished
/// jobs go back to the queue once the old name misses its heartbeats. A queue that
/// keeps failing for `give_up_after` ends the whole process with an error.
pub async fn run(
    config: WorkerConfig,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    // Lazy: the database may be away when the worker starts; the supervisors wait.
    // One connection listens for every queue; each queue run needs one to fetch,
    // record and beat its heart; two spare for restarts after an outage.
    let runs = config.queues.clone();
    let queue_pool = sqlx::postgres::PgPoolOptions::new()
        .max_connections(1 + runs.len() as u32 + 2)
        .acquire_timeout(Duration::from_secs(10))
        .connect_lazy(&config.database.url)?;
    let wakeups = wakeups::Wakeups::default();
    let listener = tokio::spawn(wakeups.clone().listen(queue_pool.clone()));
    let give_up_after = config.give_up_after;
    let database_url = config.database.url.clone();
    let metrics_addr = config.metrics_addr;
    let ctx = Arc::new(JobContext::connect(config).await?);
    // Scraped on a listener of its own, for as long as the worker runs.
    let _metrics = match metrics_addr {
        Some(addr) => Some(upload_telemetry::MetricsListener::serve(
            tokio::net::TcpListener::bind(addr).await?,
            ctx.metrics.renderer(ctx.pool.clone()),
        )?),
        None => None,
    };
    let shutdown = futures::FutureExt::shared(Box::pin(shutdown) as supervise::Signal);
    let sweeper = tokio::spawn(sweep::sweep_forever(
        Arc::clone(&ctx),
        ctx.config.sweep_interval,
        ctx.config.stuck_after,
    ));
    // The watch asks clamd, which runs beside the scan queue's workers.
    let scans = runs
        .iter()
        .any(|r| matches!(r.queue, Queue::Scan | Queue::Rescan));
    let signatures = scans.then(|| {
        tokio::spawn(rescan::watch_signatures(
            Arc::clone(&ctx),
            ctx.config.signature_check_interval,
        ))
    });
    let worker_name = format!("upload-worker-{}", uuid::Uuid::now_v7());
    // One worker per queue, each with its own handles, all running the one generic
    // handler. The worker types differ per job, hence a macro rather than a function.
    macro_rules! supervised {
        ($job:ty, $concurrency:expr) => {{
            let queue = <$job as Job>::QUEUE;
            let concurrency: usize = $concurrency;
            let (ctx, pool, name, wakeups) = (
                Arc::clone(&ctx),
                queue_pool.clone(),
                format!("{worker_name}-{}", queue.name()),
                wakeups.clone(),
            );
            let stop = shutdown.clone();
            let run_once = move |restarts: usize| {
                let worker = WorkerBuilder::new(format!("{name}-{restarts}"))
                    .backend(storage::<<$job as Job>::Payload>(
                        &pool,
                        queue,
                        concurrency,
                        wakeups.subscribe(queue),
                    ))
                    .data(Arc::clone(&ctx))
                    .concurrency(concurrency)
                    .build(run_job::<$job>);
                let stop = stop.clone();
                async move {
                    worker
                        .run_until(async move {
                            stop.await;
                            Ok::<(), std::io::Error>(())
                        })
                        .await
                }
            };
            let url = database_url.clone();
            tokio::spawn(supervise::supervise(
                queue,
                give_up_after,
                shutdown.clone(),
                run_once,
                move || supervise::database_answers(url.clone()),
            ))
        }};
    }
    tracing::info!(
        queues = %runs
            .iter()
            .map(|r| format!("{}:{}", r.queue.short_name(), r.concurrency))
            .collect::<Vec<_>>()
            .join(","),
        "running queues"
    );
    let queues: Vec<_> = runs
        .iter()
        .map(|run| match run.queue {
            Queue::Scan => supervised!(scan::Scan, run.concurrency),
            Queue::Metadata => supervised!(metadata::Metadata, run.concurrency),
            Queue::Preview => supervised!(preview::Preview, run.concurrency),
            Queue::Notify => supervised!(notify::Notify, run.concurrency),
            Queue::Persist => supervised!(persist::Persist, run.concurrency),
            Queue::Move => supervised!(move_file::Move, run.concurrency),
            Queue::Rescan => supervised!(rescan::Rescan, run.concurrency),
        })
        .collect();
    let mut result = Ok(());
    for queue in queues {
        match queue.await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => result = Err(e),
            Err(e) => result = Err(anyhow::anyhow!("a queue supervisor panicked: {e}")),
        }
    }
    sweeper.abort();
    listener.abort();
    if let Some(signatures) = signatures {
        signatures.abort();
    }
    result
}

/// Resolves on SIGTERM (what orchestrators send) or Ctrl-C; without a SIGTERM
/// handler, on Ctrl-C only.
pub async fn shutdown_signal() {
    match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
        Ok(mut term) => {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
        }
        Err(e) => {
            tracing::warn!(error = %e, "cannot listen for SIGTERM; stop with Ctrl-C");
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}
