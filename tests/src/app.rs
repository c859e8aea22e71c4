//! A running server and worker over a database and buckets of their own, stopped
//! and removed when the test ends, after checking that the test left no job behind
//! that it did not expect.

use std::collections::HashMap;
use std::sync::atomic::{AtomicI64, Ordering};

use anyhow::Context;
use diesel_async::RunQueryDsl;
use tokio::sync::oneshot;
use upload_config::{ServerConfig, StoreConfig, WorkerConfig};
use upload_server::auth::TokenKeys;
use upload_storage::Store;

use crate::buckets::TestBuckets;
use crate::stack::{connect, create_database, drop_database, stack_env};

/// A running server and worker over a database of their own.
pub struct TestApp {
    /// The gRPC endpoint, `http://127.0.0.1:PORT` (`https://` with TLS).
    pub endpoint: String,
    /// The first server's `/metrics`.
    pub server_metrics_url: String,
    /// The first worker's `/metrics` (when the app runs a worker).
    pub worker_metrics_url: String,
    /// The test's database URL.
    pub database_url: String,
    /// The store, with the test's buckets.
    pub store: Store,
    /// Signs tokens the server accepts.
    pub keys: TokenKeys,
    /// The server's configuration.
    pub config: ServerConfig,
    /// The environment the worker was (or would be) configured from.
    pub worker_env: HashMap<String, String>,
    /// The environment every process of this app starts from: the stack, the
    /// test's database, buckets and secret.
    env: HashMap<String, String>,
    admin_url: String,
    db_name: String,
    buckets: TestBuckets,
    /// Jobs the test expects to leave unfinished (queued, or scheduled for later).
    expected_unfinished: AtomicI64,
    /// True when this app runs a worker of its own (jobs due now will be run).
    has_worker: bool,
    /// The server first, then the worker if any.
    running: Vec<Running>,
}

/// Options for [`TestApp::spawn_with`].
#[derive(Debug, Clone)]
pub struct AppOptions {
    /// Start the worker too.
    pub worker: bool,
    /// Extra environment settings (for example `UPLOAD_SIGN_EXPIRY_SECS`).
    pub env: Vec<(String, String)>,
    /// Settings for the worker alone, applied after `env`.
    pub worker_env: Vec<(String, String)>,
    /// The PostgreSQL server to make the test's database on (its `postgres`
    /// database's URL); the stack's when `None`.
    pub admin_database_url: Option<String>,
    /// Serve plain text instead of TLS with the harness's test CA.
    pub plaintext: bool,
    /// The first server and worker serve `/metrics` (and the server counts RPCs).
    pub metrics: bool,
    /// Store everything on the stack's three-node Garage cluster (every object on
    /// three nodes) instead of its single node: the harness and the services.
    pub cluster: bool,
}

impl Default for AppOptions {
    fn default() -> Self {
        Self {
            worker: true,
            env: Vec::new(),
            worker_env: Vec::new(),
            admin_database_url: None,
            plaintext: false,
            metrics: true,
            cluster: false,
        }
    }
}

impl AppOptions {
    /// A server and a worker storing everything on the three-node Garage cluster:
    /// for the tests of what the store does (multipart, copies, deletes, reads).
    pub fn on_cluster() -> Self {
        Self {
            cluster: true,
            ..Self::default()
        }
    }
}

impl TestApp {
    /// Starts a server and a worker with default settings.
    pub async fn spawn() -> Self {
        Self::spawn_with(AppOptions::default()).await
    }

    /// Starts a server (and a worker, unless told not to) on a fresh database and
    /// fresh buckets.
    pub async fn spawn_with(options: AppOptions) -> Self {
        Self::try_spawn(options)
            .await
            .expect("starting the test app")
    }

    async fn try_spawn(options: AppOptions) -> anyhow::Result<Self> {
        let _ = tracing_subscriber_init();
        let stack = stack_env();
        let admin_url = match options.admin_database_url.clone() {
            Some(url) => url,
            None => stack
                .get("UPLOAD_ADMIN_DATABASE_URL")
                .cloned()
                .context("UPLOAD_ADMIN_DATABASE_URL missing from the stack env")?,
        };
        let db_name = format!("upload_test_{}", uuid::Uuid::now_v7().simple());
        let database_url = create_database(&admin_url, &db_name).await?;
        let buckets = TestBuckets::fresh();

        let mut env = stack;
        // The harness signs HS256 tokens of its own; the stack's local issuer (its
        // JWKS) is for the demo. A test that wants a JWKS sets one in its options.
        // Likewise its TLS settings, if a demo's environment was kept: a test that
        // wants TLS sets its own.
        for name in [
            "UPLOAD_JWKS",
            "UPLOAD_JWT_ISSUER",
            "UPLOAD_JWT_AUDIENCE",
            "UPLOAD_TLS_CERT",
            "UPLOAD_TLS_KEY",
        ] {
            env.remove(name);
        }
        env.insert("UPLOAD_DATABASE_URL".into(), database_url.clone());
        env.insert("UPLOAD_DATABASE_POOL_SIZE".into(), "8".into());
        env.insert(
            "UPLOAD_JWT_SECRET".into(),
            format!("test-secret-{}", uuid::Uuid::now_v7().simple()),
        );
        env.insert("UPLOAD_JWT_ALLOW_HS256".into(), "true".into());
        // Fair use is its own tests' concern: the others create and watch freely.
        for (name, value) in [
            ("UPLOAD_CREATES_PER_MINUTE", "1000000"),
            ("UPLOAD_MAX_OPEN_UPLOADS", "1000000"),
            ("UPLOAD_MAX_WATCHES", "100000"),
        ] {
            env.insert(name.into(), value.into());
        }
        // The services the tests call as, each acting for sellers; a test of
        // delegations sets its own.
        env.insert(
            "UPLOAD_SERVICE_ACT_FOR".into(),
            "catalogue=seller;orders=seller;stranger=seller".into(),
        );
        // ffmpeg and ffprobe run in the test worker's process unless a test gives
        // it a sandbox (as production does).
        env.insert("UPLOAD_MEDIA_IN_PROCESS".into(), "true".into());
        // The tests' webhook receivers listen on loopback over plain http.
        env.insert("UPLOAD_WEBHOOK_ALLOW_HTTP".into(), "true".into());
        env.insert("UPLOAD_GRPC_ADDR".into(), "127.0.0.1:0".into());
        // The gRPC-web tests' origin and pages the tests serve on loopback ports.
        env.insert(
            "UPLOAD_CORS_ORIGINS".into(),
            "https://seller.example,http://127.0.0.1:*".into(),
        );
        env.insert("UPLOAD_JOB_RETRY_BASE_SECS".into(), "1".into());
        env.extend(buckets.env());
        if options.cluster {
            let endpoint = env
                .get("UPLOAD_CLUSTER_S3_ENDPOINT")
                .cloned()
                .context("UPLOAD_CLUSTER_S3_ENDPOINT missing: restart the stack (stack.sh up)")?;
            env.insert("UPLOAD_S3_ENDPOINT".into(), endpoint);
        }
        // TLS with the harness's CA (the clients it makes trust it), unless plain
        // text is asked for; a test's own TLS settings come after and win.
        if !options.plaintext {
            let tls = crate::tls::test_tls();
            env.insert(
                "UPLOAD_TLS_CERT".into(),
                tls.cert_path.display().to_string(),
            );
            env.insert("UPLOAD_TLS_KEY".into(), tls.key_path.display().to_string());
        }
        let base = env.clone();
        env.extend(options.env);
        // The harness reaches the store directly, whatever the services are given
        // (a fault proxy, for example).
        let store = Store::new(&StoreConfig::from_source(&base)?);
        buckets.create(&store).await?;
        let config = ServerConfig::from_source(&env)?;
        // The first server and worker serve their metrics, each on a port of its
        // own (replicas and extra workers do not, so they never collide).
        let metrics_at = |port: u16| std::net::SocketAddr::from(([127, 0, 0, 1], port));
        let server_metrics = metrics_at(crate::free_port());
        let (endpoint, server) = start_server(ServerConfig {
            metrics_addr: options.metrics.then_some(server_metrics),
            ..config.clone()
        })
        .await?;
        let mut running = vec![server];
        let mut worker_env = env.clone();
        worker_env.extend(options.worker_env);
        let worker_metrics = metrics_at(crate::free_port());
        if options.worker {
            running.push(start_worker(WorkerConfig {
                metrics_addr: options.metrics.then_some(worker_metrics),
                ..WorkerConfig::from_source(&worker_env)?
            }));
        }
        Ok(Self {
            endpoint,
            server_metrics_url: format!("http://{server_metrics}/metrics"),
            worker_metrics_url: format!("http://{worker_metrics}/metrics"),
            store,
            // No HS256 secret (a test of JWKS tokens): the harness mints nothing.
            keys: config
                .auth
                .jwt_secret
                .as_deref()
                .map_or_else(TokenKeys::default, TokenKeys::new),
            database_url,
            config,
            worker_env,
            env: base,
            admin_url,
            db_name,
            buckets,
            expected_unfinished: AtomicI64::new(0),
            has_worker: options.worker,
            running,
        })
    }

    /// Starts a second server replica on this app's database and secret; returns its
    /// endpoint and a handle that stops it when dropped.
    pub async fn spawn_replica(app: &TestApp) -> (String, Running) {
        start_server(app.config.clone())
            .await
            .expect("starting a replica")
    }

    /// Starts one more worker on this app's database and buckets, stopped when the
    /// handle drops.
    pub async fn spawn_worker_for(app: &TestApp, options: AppOptions) -> Running {
        let mut env = app.env.clone();
        env.insert("UPLOAD_DATABASE_POOL_SIZE".into(), "4".into());
        env.extend(options.env);
        env.extend(options.worker_env);
        start_worker(WorkerConfig::from_source(&env).expect("worker config"))
    }

    /// The job context a worker of this app uses, to run jobs by hand.
    pub async fn job_context(&self) -> upload_worker::JobContext {
        let config = WorkerConfig::from_source(&self.worker_env).expect("worker config");
        upload_worker::JobContext::connect(config)
            .await
            .expect("job context")
    }

    /// Lets the worker finish every job due now, then stops it (in order, so every
    /// outcome is recorded): from here on nothing changes unless a call changes it.
    pub async fn settle_and_stop_worker(&mut self) {
        assert!(self.has_worker, "this app runs no worker");
        let deadline = tokio::time::Instant::now() + crate::WAIT;
        loop {
            let due = unfinished_jobs(&self.database_url, true)
                .await
                .expect("reading the test's jobs");
            if due.is_empty() {
                break;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "jobs still due after {:?}: {due:?}",
                crate::WAIT
            );
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        drop(self.running.pop());
        self.has_worker = false;
    }

    /// Declares that the test leaves `count` jobs unfinished on purpose (queued with
    /// no worker to run them, or a retry scheduled for later); the check at the end
    /// of the test then wants exactly that many.
    pub fn expect_unfinished_jobs(&self, count: i64) {
        self.expected_unfinished.store(count, Ordering::SeqCst);
    }

    /// The name of the bucket with `role`.
    pub fn bucket(&self, role: upload_storage::Bucket) -> &str {
        self.store.bucket_name(role)
    }
}

/// A server or worker running in the test's runtime; shut down in order when
/// dropped (a worker finishes and acknowledges its jobs, as on SIGTERM), and
/// aborted if it takes longer than [`STOP_GRACE`].
pub struct Running {
    stop: Option<oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<()>>,
}

/// How long a stopping server or worker may take before it is aborted.
const STOP_GRACE: std::time::Duration = std::time::Duration::from_secs(10);

impl Running {
    /// Aborts at once, as a crash would: jobs in flight stay unacknowledged.
    pub fn kill(mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        let Some(mut task) = self.task.take() else {
            return;
        };
        // Waiting needs a runtime that can run the task meanwhile.
        let multi_thread = tokio::runtime::Handle::try_current()
            .is_ok_and(|h| h.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread);
        if multi_thread {
            tokio::task::block_in_place(|| {
                tokio::runtime::Handle::current().block_on(async {
                    if tokio::time::timeout(STOP_GRACE, &mut task).await.is_err() {
                        task.abort();
                    }
                });
            });
        } else {
            task.abort();
        }
    }
}

/// Serves the API with `config` on a free loopback port; returns its endpoint.
async fn start_server(config: ServerConfig) -> anyhow::Result<(String, Running)> {
    let listener = tokio::net::TcpListener::bind(config.listen_addr).await?;
    let scheme = if config.tls.is_some() {
        "https"
    } else {
        "http"
    };
    let endpoint = format!("{scheme}://{}", listener.local_addr()?);
    let state = upload_server::build_state(&config).await?;
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(async move {
        let shutdown = async {
            let _ = stopped.await;
        };
        if let Err(e) = upload_server::serve(&config, state, listener, shutdown).await {
            eprintln!("test server stopped with an error: {e:#}");
        }
    });
    Ok((
        endpoint,
        Running {
            stop: Some(stop),
            task: Some(task),
        },
    ))
}

/// Runs a worker with `config`.
fn start_worker(config: WorkerConfig) -> Running {
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(async move {
        let shutdown = async {
            let _ = stopped.await;
        };
        if let Err(e) = upload_worker::run(config, shutdown).await {
            eprintln!("test worker stopped with an error: {e:#}");
        }
    });
    Running {
        stop: Some(stop),
        task: Some(task),
    }
}

/// Jobs not finished: queued, running, or scheduled for a later attempt.
const UNFINISHED: &str = "status IN ('Pending', 'Queued', 'Running')";

/// The unfinished jobs of the database at `url`, one line each; with
/// `waiting_only`, those due now that no worker has taken yet.
async fn unfinished_jobs(url: &str, waiting_only: bool) -> anyhow::Result<Vec<String>> {
    #[derive(diesel::QueryableByName)]
    struct Line {
        #[diesel(sql_type = diesel::sql_types::Text)]
        line: String,
    }
    let due = if waiting_only {
        " AND status <> 'Running' AND run_at <= now() + interval '1 second'"
    } else {
        ""
    };
    let mut conn = connect(url).await?;
    let lines: Vec<Line> = diesel::sql_query(format!(
        "SELECT concat_ws(' ', job_type, idempotency_key, status, 'run_at', run_at::text) AS line
         FROM apalis.jobs WHERE {UNFINISHED}{due} ORDER BY run_at"
    ))
    .load(&mut conn)
    .await?;
    Ok(lines.into_iter().map(|l| l.line).collect())
}

impl Drop for TestApp {
    fn drop(&mut self) {
        let check = !std::thread::panicking();
        // Jobs due now but not yet taken get a moment to start while the worker
        // still runs; the orderly stop below lets running ones finish and records
        // their outcome (apalis acknowledges only on its next poll or at shutdown).
        // A job handed back after a database outage (its acknowledgement lost with
        // the connection) waits for the takeover and the restarted queue's next
        // poll: up to 45 s under a loaded machine; a passing test waits for nothing.
        let expected = AtomicI64::load(&self.expected_unfinished, Ordering::SeqCst);
        if check && self.has_worker {
            let url = self.database_url.clone();
            let _ = on_own_runtime(async move {
                let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(45);
                // Done waiting once no job is due, or once only the jobs the test
                // leaves on purpose are left (one no worker here runs stays due).
                while tokio::time::Instant::now() < deadline
                    && !unfinished_jobs(&url, true).await?.is_empty()
                    && i64::try_from(unfinished_jobs(&url, false).await?.len()).unwrap_or(i64::MAX)
                        > expected
                {
                    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                }
                anyhow::Ok(())
            });
        }
        // Stop server and worker (in order) before reading what they left, and
        // before their database and buckets go.
        self.running.clear();
        let left = if check {
            let url = self.database_url.clone();
            on_own_runtime(async move { unfinished_jobs(&url, false).await })
        } else {
            Ok(Vec::new())
        };
        let (admin_url, name) = (self.admin_url.clone(), self.db_name.clone());
        let (buckets, store) = (self.buckets.clone(), self.store.clone());
        let removed = on_own_runtime(async move {
            drop_database(&admin_url, &name).await;
            buckets.remove(&store).await
        });
        if !check {
            return;
        }
        if let Err(e) = removed {
            panic!("removing the test's buckets failed: {e:#}");
        }
        let left = left.unwrap_or_else(|e| panic!("reading the test's jobs failed: {e:#}"));
        if i64::try_from(left.len()).unwrap_or(i64::MAX) != expected {
            panic!(
                "the test left {} unfinished job(s), {expected} expected:\n{}",
                left.len(),
                left.join("\n")
            );
        }
    }
}

/// Runs `work` to its end on a runtime of its own, in a thread of its own: Drop
/// cannot await, and the test's runtime may be busy shutting down.
fn on_own_runtime<T: Send + 'static>(
    work: impl Future<Output = anyhow::Result<T>> + Send + 'static,
) -> anyhow::Result<T> {
    std::thread::spawn(move || {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?
            .block_on(work)
    })
    .join()
    .map_err(|_| anyhow::anyhow!("the cleanup thread panicked"))?
}

fn tracing_subscriber_init() -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into()),
        )
        .with_test_writer()
        .try_init()
}
