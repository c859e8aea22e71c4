#![doc = include_str!("../README.md")]

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use tokio::sync::oneshot;
use upload_client::UploadClient;
use upload_config::{ServerConfig, StoreConfig, WorkerConfig};
use upload_domain::{SellerGroup, SellerId};
use upload_server::auth::TokenKeys;
use upload_storage::Store;

pub use upload_client::pb;

mod fixtures;
mod items;
mod proxy;
pub use fixtures::*;
pub use items::*;
pub use proxy::{Proxy, ProxyRules, ProxyStats};

/// The stack's environment, from the process or from the file the stack script writes.
pub fn stack_env() -> HashMap<String, String> {
    let dir = std::env::var("UPLOAD_STACK_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|_| Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/stack"));
    let file = dir.join("stack.env");
    let text = std::fs::read_to_string(&file).unwrap_or_else(|_| {
        panic!(
            "{} not found: start the local stack first with `deploy/local/stack.sh up` (the README's test command does)",
            file.display()
        )
    });
    text.lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
        .collect()
}

fn db_url(admin_url: &str, name: &str) -> String {
    let base = admin_url
        .rsplit_once('/')
        .map(|(b, _)| b)
        .unwrap_or(admin_url);
    format!("{base}/{name}")
}

async fn admin(url: &str) -> anyhow::Result<AsyncPgConnection> {
    AsyncPgConnection::establish(url)
        .await
        .context("connecting to the test PostgreSQL")
}

/// The template database for the current migrations, created once (under an
/// advisory lock, since tests run in parallel processes).
async fn template(admin_url: &str) -> anyhow::Result<String> {
    use std::hash::{Hash, Hasher};
    // Named after the migrations' contents, so an edited migration gets a new template.
    let mut h = std::collections::hash_map::DefaultHasher::new();
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../migrations");
    let mut files: Vec<PathBuf> = walk(&dir);
    files.sort();
    for f in files {
        f.file_name().hash(&mut h);
        std::fs::read(&f).unwrap_or_default().hash(&mut h);
    }
    let name = format!("upload_tmpl_{:016x}", h.finish());
    let mut conn = admin(admin_url).await?;
    diesel::sql_query("SELECT pg_advisory_lock(727274)")
        .execute(&mut conn)
        .await?;
    let result = async {
        #[derive(diesel::QueryableByName)]
        struct Found {
            #[diesel(sql_type = diesel::sql_types::Integer)]
            #[allow(dead_code)]
            one: i32,
        }
        let found: Vec<Found> =
            diesel::sql_query("SELECT 1 AS one FROM pg_database WHERE datname = $1")
                .bind::<diesel::sql_types::Text, _>(&name)
                .load(&mut conn)
                .await?;
        if found.is_empty() {
            let building = format!("{name}_building");
            diesel::sql_query(format!("DROP DATABASE IF EXISTS {building}"))
                .execute(&mut conn)
                .await?;
            diesel::sql_query(format!("CREATE DATABASE {building}"))
                .execute(&mut conn)
                .await?;
            upload_db::run_migrations(&db_url(admin_url, &building)).await?;
            diesel::sql_query(format!("ALTER DATABASE {building} RENAME TO {name}"))
                .execute(&mut conn)
                .await?;
        }
        Ok::<_, anyhow::Error>(())
    }
    .await;
    diesel::sql_query("SELECT pg_advisory_unlock(727274)")
        .execute(&mut conn)
        .await?;
    result.map(|()| name)
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    entries
        .filter_map(Result::ok)
        .flat_map(|e| {
            let path = e.path();
            if path.is_dir() {
                walk(&path)
            } else {
                vec![path]
            }
        })
        .collect()
}

/// A running server and worker over a database of their own.
pub struct TestApp {
    /// The gRPC endpoint, `http://127.0.0.1:PORT`.
    pub endpoint: String,
    /// The test's database URL.
    pub database_url: String,
    /// The store, with the stack's buckets.
    pub store: Store,
    /// Signs tokens the server accepts.
    pub keys: TokenKeys,
    /// The server's configuration.
    pub config: ServerConfig,
    /// The environment the worker was (or would be) configured from.
    pub worker_env: HashMap<String, String>,
    admin_url: String,
    db_name: String,
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
}

impl Default for AppOptions {
    fn default() -> Self {
        Self {
            worker: true,
            env: Vec::new(),
            worker_env: Vec::new(),
        }
    }
}

impl TestApp {
    /// Starts a server and a worker with default settings.
    pub async fn spawn() -> Self {
        Self::spawn_with(AppOptions::default()).await
    }

    /// Starts a server (and a worker, unless told not to) on a fresh database.
    pub async fn spawn_with(options: AppOptions) -> Self {
        Self::try_spawn(options)
            .await
            .expect("starting the test app")
    }

    async fn try_spawn(options: AppOptions) -> anyhow::Result<Self> {
        let _ = tracing_subscriber_init();
        let stack = stack_env();
        let admin_url = stack
            .get("UPLOAD_ADMIN_DATABASE_URL")
            .cloned()
            .context("UPLOAD_ADMIN_DATABASE_URL missing from the stack env")?;
        let template = template(&admin_url).await?;
        let db_name = format!("upload_test_{}", uuid::Uuid::now_v7().simple());
        let mut conn = admin(&admin_url).await?;
        diesel::sql_query(format!("CREATE DATABASE {db_name} TEMPLATE {template}"))
            .execute(&mut conn)
            .await?;
        let database_url = db_url(&admin_url, &db_name);

        let mut env = stack.clone();
        env.insert("UPLOAD_DATABASE_URL".into(), database_url.clone());
        env.insert("UPLOAD_DATABASE_POOL_SIZE".into(), "8".into());
        env.insert(
            "UPLOAD_JWT_SECRET".into(),
            format!("test-secret-{}", uuid::Uuid::now_v7().simple()),
        );
        env.insert("UPLOAD_GRPC_ADDR".into(), "127.0.0.1:0".into());
        env.insert("UPLOAD_JOB_RETRY_BASE_SECS".into(), "1".into());
        for (k, v) in options.env {
            env.insert(k, v);
        }
        let config = ServerConfig::from_source(&env)?;
        let (endpoint, server) = start_server(config.clone()).await?;
        let mut running = vec![server];
        let mut worker_env = env.clone();
        worker_env.extend(options.worker_env);
        if options.worker {
            running.push(start_worker(WorkerConfig::from_source(&worker_env)?));
        }
        Ok(Self {
            endpoint,
            store: Store::new(&StoreConfig::from_source(&env)?),
            keys: TokenKeys::new(&config.auth.jwt_secret),
            database_url,
            config,
            worker_env,
            admin_url,
            db_name,
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

    /// Starts one more worker on this app's database, stopped when the handle drops.
    pub async fn spawn_worker_for(app: &TestApp, options: AppOptions) -> Running {
        let mut env = stack_env();
        env.insert("UPLOAD_DATABASE_URL".into(), app.database_url.clone());
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

    /// Uploads `file` whole as `name` of type `content_type` for a standard seller
    /// and completes it.
    pub async fn upload_whole(
        &self,
        seller: &str,
        file: &TestFile,
        name: &str,
        content_type: &str,
    ) -> (UploadClient, pb::Upload) {
        let client = self.client(seller, SellerGroup::Standard).await;
        let upload = client
            .create(name, file.size, content_type, None)
            .await
            .expect("CreateUpload");
        let all: Vec<u32> = (1..=upload.part_count).collect();
        client
            .send_parts(
                &upload,
                &file.path,
                &all,
                upload_client::SendOptions::default(),
                |_, _| {},
            )
            .await
            .expect("sending parts");
        let done = client
            .complete(&upload.upload_id)
            .await
            .expect("CompleteUpload");
        (client, done)
    }

    /// Reads a whole object (small ones: previews) into memory.
    pub async fn object_bytes(&self, bucket: &str, key: &str) -> Option<Vec<u8>> {
        let out = self
            .store
            .client()
            .get_object()
            .bucket(bucket)
            .key(key)
            .send()
            .await
            .ok()?;
        Some(out.body.collect().await.ok()?.into_bytes().to_vec())
    }

    /// A bearer token for a seller.
    pub fn token(&self, seller: &str, group: SellerGroup) -> String {
        let seller: SellerId = seller.parse().expect("valid seller id");
        self.keys
            .mint(&seller, group, Duration::from_secs(3600))
            .expect("minting a token")
    }

    /// A connected client for a seller.
    pub async fn client(&self, seller: &str, group: SellerGroup) -> UploadClient {
        UploadClient::connect(&self.endpoint, &self.token(seller, group))
            .await
            .expect("connecting to the test server")
    }

    /// A raw database connection to the test's database.
    pub async fn db(&self) -> AsyncPgConnection {
        admin(&self.database_url)
            .await
            .expect("connecting to the test database")
    }

    /// Creates an upload of `file` in 5 MiB parts for a standard seller and sends
    /// `parts` of it (every part when `None`); does not complete it.
    pub async fn upload_parts(
        &self,
        seller: &str,
        file: &TestFile,
        parts: Option<&[u32]>,
    ) -> (UploadClient, pb::Upload) {
        let client = self.client(seller, SellerGroup::Standard).await;
        let upload = client
            .create(
                "product.bin",
                file.size,
                "application/octet-stream",
                Some(5 * 1024 * 1024),
            )
            .await
            .expect("CreateUpload");
        let all: Vec<u32> = (1..=upload.part_count).collect();
        client
            .send_parts(
                &upload,
                &file.path,
                parts.unwrap_or(&all),
                upload_client::SendOptions::default(),
                |_, _| {},
            )
            .await
            .expect("sending parts");
        (client, upload)
    }

    /// The temp key and the store's multipart id of the test's first upload.
    pub async fn upload_keys(&self) -> (String, String) {
        use diesel::prelude::*;
        use upload_db::schema::uploads::dsl;
        let mut conn = self.db().await;
        diesel_async::RunQueryDsl::first(
            dsl::uploads
                .order(dsl::created_at)
                .select((dsl::temp_key, dsl::store_upload_id)),
            &mut conn,
        )
        .await
        .expect("an upload exists")
    }

    /// Assembles the test's first upload in the store directly, as a server that
    /// died between CompleteMultipartUpload and its database write would leave it.
    pub async fn complete_in_store_only(&self) {
        let row = self.first_upload().await;
        let multipart =
            upload_storage::MultipartUpload::of(&row.owner_id, row.id, &row.store_upload_id);
        let parts = self.store.list_parts(&multipart).await.expect("ListParts");
        self.store
            .complete_multipart(&multipart, &parts)
            .await
            .expect("CompleteMultipartUpload");
    }

    /// What the store lists of the test's first upload's parts (an error once the
    /// multipart upload is gone).
    pub async fn first_upload_parts(
        &self,
    ) -> Result<Vec<upload_storage::StoredPart>, upload_storage::StoreError> {
        let row = self.first_upload().await;
        self.store
            .list_parts(&upload_storage::MultipartUpload::of(
                &row.owner_id,
                row.id,
                &row.store_upload_id,
            ))
            .await
    }

    /// The test's first upload, as stored.
    pub async fn first_upload(&self) -> upload_db::models::UploadRow {
        use diesel::prelude::*;
        use upload_db::schema::uploads::dsl;
        let mut conn = self.db().await;
        diesel_async::RunQueryDsl::first(
            dsl::uploads
                .order(dsl::created_at)
                .select(upload_db::models::UploadRow::as_select()),
            &mut conn,
        )
        .await
        .expect("an upload exists")
    }

    /// Runs an SQL statement on the test's database.
    pub async fn execute(&self, statement: &str) {
        let mut conn = self.db().await;
        diesel::sql_query(statement)
            .execute(&mut conn)
            .await
            .unwrap_or_else(|e| panic!("statement {statement:?} failed: {e}"));
    }

    /// Waits until `sql` (a count) returns `expected`, or panics after `timeout`.
    pub async fn wait_count(&self, sql: &str, expected: i64, timeout: Duration) {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let n = self.count(sql).await;
            if n == expected {
                return;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "{sql} gave {n}, expected {expected}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Runs a query returning one bigint (`SELECT count(*) ...`).
    pub async fn count(&self, sql: &str) -> i64 {
        #[derive(diesel::QueryableByName)]
        struct N {
            #[diesel(sql_type = diesel::sql_types::BigInt)]
            n: i64,
        }
        let mut conn = self.db().await;
        let rows: Vec<N> = diesel::sql_query(format!("SELECT ({sql})::bigint AS n"))
            .load(&mut conn)
            .await
            .unwrap_or_else(|e| panic!("query {sql:?} failed: {e}"));
        <[N]>::first(&rows).map(|r| r.n).unwrap_or_default()
    }

    /// Waits until the upload settles, or panics after `timeout`.
    pub async fn wait_settled(
        &self,
        client: &UploadClient,
        upload_id: &str,
        timeout: Duration,
    ) -> pb::Upload {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let upload = client
                .get(upload_id)
                .await
                .expect("GetUpload")
                .upload
                .expect("upload");
            let state = pb::UploadState::try_from(upload.state).unwrap_or_default();
            if matches!(
                state,
                pb::UploadState::Ready
                    | pb::UploadState::Failed
                    | pb::UploadState::Rejected
                    | pb::UploadState::Quarantined
                    | pb::UploadState::Aborted
                    | pb::UploadState::Expired
            ) {
                return upload;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "upload {upload_id} still {state:?} after {timeout:?}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

/// A server or worker running in the test's runtime; stopped when dropped.
pub struct Running {
    stop: Option<oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        self.task.abort();
    }
}

/// Serves the API with `config` on a free loopback port; returns its endpoint.
async fn start_server(config: ServerConfig) -> anyhow::Result<(String, Running)> {
    let listener = tokio::net::TcpListener::bind(config.listen_addr).await?;
    let endpoint = format!("http://{}", listener.local_addr()?);
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
            task,
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
        task,
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        // Stop server and worker before their database goes.
        self.running.clear();
        // Drop the database from a thread of its own: Drop cannot await.
        let admin_url = self.admin_url.clone();
        let name = self.db_name.clone();
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build();
            if let Ok(rt) = rt {
                rt.block_on(async {
                    if let Ok(mut conn) = admin(&admin_url).await {
                        let _ = diesel::sql_query(format!(
                            "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
                        ))
                        .execute(&mut conn)
                        .await;
                    }
                });
            }
        })
        .join();
    }
}

fn tracing_subscriber_init() -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into()),
        )
        .with_test_writer()
        .try_init()
}

/// A process's peak resident memory so far (VmHWM), in KiB; `None` once it is gone.
pub fn peak_rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}

/// A file of random bytes, written in blocks, with its MD5 and SHA-256.
pub struct TestFile {
    /// Where it is.
    pub path: PathBuf,
    /// Its size.
    pub size: u64,
    /// Hex MD5.
    pub md5_hex: String,
    /// Hex SHA-256.
    pub sha256_hex: String,
    _dir: Arc<tempfile::TempDir>,
}

impl TestFile {
    /// Writes `size` random bytes (seeded, so a failure can be reproduced).
    pub fn random(size: u64, seed: u64) -> Self {
        use md5::Digest;
        use rand::{RngCore, SeedableRng};
        use std::io::Write;
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("product.bin");
        let mut out =
            std::io::BufWriter::new(std::fs::File::create(&path).expect("create test file"));
        let mut rng = rand::rngs::SmallRng::seed_from_u64(seed);
        let mut md5 = md5::Md5::new();
        let mut sha = sha2::Sha256::new();
        let mut block = vec![0u8; 1 << 20];
        let mut left = size;
        while left > 0 {
            let n = usize::try_from(left.min(block.len() as u64)).unwrap_or(block.len());
            rng.fill_bytes(&mut block[..n]);
            md5.update(&block[..n]);
            sha.update(&block[..n]);
            out.write_all(&block[..n]).expect("write test file");
            left -= n as u64;
        }
        out.flush().expect("flush test file");
        Self {
            path,
            size,
            md5_hex: hex::encode(md5.finalize()),
            sha256_hex: hex::encode(sha.finalize()),
            _dir: Arc::new(dir),
        }
    }
}

/// Opens WatchProgress on `upload_id` and collects every update in the background
/// until the stream ends (the upload settled).
pub async fn follow(
    client: &UploadClient,
    upload_id: &str,
) -> tokio::task::JoinHandle<Vec<pb::WatchProgressResponse>> {
    use futures::StreamExt;
    let mut watch = client.watch(upload_id).await.expect("WatchProgress");
    tokio::spawn(async move {
        let mut updates = Vec::new();
        while let Some(update) = watch.next().await {
            updates.push(update.expect("progress update"));
        }
        updates
    })
}

/// The gRPC status code of a failed call.
pub fn code<T: std::fmt::Debug>(result: Result<T, tonic::Status>) -> tonic::Code {
    result.expect_err("the call should have failed").code()
}
