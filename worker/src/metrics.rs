//! The worker's metrics, served in the Prometheus text format on their own
//! listener (`UPLOAD_METRICS_ADDR`): job runs by queue, outcome and attempt with
//! their durations, scan verdicts and bytes scanned, and, read from
//! `apalis.jobs` on each scrape (one grouped query), each queue's depth and the
//! age of its oldest ready job; calls to the store and clamd.

use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;
use upload_db::DbPool;
use upload_db::jobs::Queue;
use upload_domain::ScanVerdict;
use upload_telemetry::{DependencyCalls, Render, seconds_histogram};

/// How a job run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunOutcome {
    /// It finished its work.
    Ok,
    /// It failed; a later attempt is scheduled.
    Retry,
    /// It failed and will not be tried again.
    GaveUp,
}

impl RunOutcome {
    fn as_str(self) -> &'static str {
        match self {
            Self::Ok => "ok",
            Self::Retry => "retry",
            Self::GaveUp => "gave_up",
        }
    }
}

/// A job run.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RunLabels {
    /// The queue.
    pub queue: String,
    /// ok, retry or gave_up.
    pub outcome: String,
    /// Its attempt, 1 for the first.
    pub attempt: String,
}

/// A queue.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct QueueLabels {
    /// The queue.
    pub queue: String,
}

/// A scan verdict.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct VerdictLabels {
    /// clean, infected or unscannable.
    pub verdict: String,
}

/// Every metric the worker keeps.
pub struct WorkerMetrics {
    registry: Registry,
    runs: Family<RunLabels, Counter>,
    run_seconds: Family<QueueLabels, Histogram>,
    verdicts: Family<VerdictLabels, Counter>,
    scanned_bytes: Counter,
    scan_seconds: Histogram,
    depth: Family<QueueLabels, Gauge>,
    oldest_ready: Family<QueueLabels, Gauge<f64, AtomicU64>>,
    /// Calls to the store and clamd.
    pub calls: DependencyCalls,
}

impl WorkerMetrics {
    /// Every metric at zero, registered.
    pub fn new() -> Arc<Self> {
        let mut registry = Registry::with_prefix("upload");
        let runs = Family::<RunLabels, Counter>::default();
        registry.register(
            "job_runs",
            "Job runs by queue, outcome and attempt",
            runs.clone(),
        );
        let run_seconds = Family::<QueueLabels, Histogram>::new_with_constructor(
            seconds_histogram as fn() -> Histogram,
        );
        registry.register(
            "job_duration_seconds",
            "Time a job run took",
            run_seconds.clone(),
        );
        let verdicts = Family::<VerdictLabels, Counter>::default();
        registry.register("scan_verdicts", "Scan verdicts recorded", verdicts.clone());
        let scanned_bytes = Counter::default();
        registry.register(
            "scanned_bytes",
            "Bytes read and scanned",
            scanned_bytes.clone(),
        );
        let scan_seconds = seconds_histogram();
        registry.register(
            "scan_duration_seconds",
            "Time to read, hash and scan one file (throughput: scanned_bytes over its sum)",
            scan_seconds.clone(),
        );
        let depth = Family::<QueueLabels, Gauge>::default();
        registry.register(
            "queue_ready_jobs",
            "Jobs due now and waiting for a worker, by queue",
            depth.clone(),
        );
        let oldest_ready = Family::<QueueLabels, Gauge<f64, AtomicU64>>::default();
        registry.register(
            "queue_oldest_ready_seconds",
            "How long the oldest job due has waited, by queue (0 when none waits)",
            oldest_ready.clone(),
        );
        let calls = DependencyCalls::registered(&mut registry);
        Arc::new(Self {
            registry,
            runs,
            run_seconds,
            verdicts,
            scanned_bytes,
            scan_seconds,
            depth,
            oldest_ready,
            calls,
        })
    }

    /// A run of `queue`'s job, attempt `attempt`, that took `took` and ended so.
    pub fn job_ran(&self, queue: Queue, attempt: u32, outcome: RunOutcome, took: Duration) {
        self.runs
            .get_or_create(&RunLabels {
                queue: queue.name().to_owned(),
                outcome: outcome.as_str().to_owned(),
                attempt: attempt.to_string(),
            })
            .inc();
        self.run_seconds
            .get_or_create(&QueueLabels {
                queue: queue.name().to_owned(),
            })
            .observe(took.as_secs_f64());
    }

    /// A verdict on a file of `bytes`, read and scanned in `took`.
    pub fn scanned(&self, verdict: ScanVerdict, bytes: u64, took: Duration) {
        self.verdicts
            .get_or_create(&VerdictLabels {
                verdict: verdict.as_str().to_owned(),
            })
            .inc();
        self.scanned_bytes.inc_by(bytes);
        self.scan_seconds.observe(took.as_secs_f64());
    }

    /// Reads every queue's depth and oldest ready job from `apalis.jobs`.
    async fn read_queues(&self, pool: &DbPool) {
        let depths = async {
            let mut conn = pool.get().await.map_err(upload_db::DbError::from)?;
            upload_db::jobs::depths(&mut conn).await
        };
        match depths.await {
            Ok(depths) => {
                for queue in Queue::ALL {
                    let labels = QueueLabels {
                        queue: queue.name().to_owned(),
                    };
                    let (ready, oldest) = depths
                        .iter()
                        .find(|d| d.queue == queue.name())
                        .map_or((0, 0.0), |d| (d.ready, d.oldest_ready_secs));
                    self.depth.get_or_create(&labels).set(ready);
                    self.oldest_ready.get_or_create(&labels).set(oldest);
                }
            }
            Err(e) => tracing::warn!(error = %e, "metrics: reading the queues failed"),
        }
    }

    /// The text of a scrape.
    pub fn render(&self) -> String {
        let mut out = String::new();
        if let Err(e) = prometheus_client::encoding::text::encode(&mut out, &self.registry) {
            tracing::warn!(error = %e, "encoding the metrics failed");
        }
        out
    }

    /// What the `/metrics` listener serves: the queues read from `pool`, then
    /// everything counted.
    pub fn renderer(self: &Arc<Self>, pool: DbPool) -> Render {
        let me = Arc::clone(self);
        Arc::new(move || {
            let (me, pool) = (Arc::clone(&me), pool.clone());
            Box::pin(async move {
                me.read_queues(&pool).await;
                me.render()
            })
        })
    }
}
