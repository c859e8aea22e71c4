//! What one upload costs, per unit, on this machine, measured in one run, and the
//! capacity model the README's "Capacity" section rests on.
//!
//! The server and the worker run as release processes of their own, so each
//! one's CPU time is read apart from the others' (and from this benchmark's
//! clients): `/proc/PID/stat` for the server, the worker (ffmpeg and ffprobe are
//! its children), clamd, Garage, and PostgreSQL (the postmaster, its live
//! backends and those that ended). Phases, one after the other:
//!
//! 1. `BENCH_SMALL` (default 100) small uploads of 256 KiB, each uploaded, scanned,
//!    submitted as an item and stored: the fixed cost of one upload per process,
//!    the database rows, bytes and WAL it leaves, and the store requests the
//!    server and the worker make for it (their `/metrics`), plus the part PUTs;
//! 2. `BENCH_LARGE` (default 2) large uploads of `BENCH_LARGE_MIB` (default 512)
//!    in 16 MiB parts, 4 at a time: per GiB uploaded (Garage), per GiB from
//!    CompleteUpload to ready (scan, two reads, hashes), per GiB moved to the
//!    regular bucket;
//! 3. `BENCH_VIDEOS` (default 3) ten-second 640×360 videos: CPU per preview
//!    (ffmpeg and ffprobe, the worker's children) beyond a plain file's cost;
//! 4. MD5 and SHA-256 of 512 MiB in this process: CPU per GiB hashed;
//! 5. SignPart, one part per call and 64 per `SignParts` call: server and
//!    database CPU per signed part.
//!
//! Then the model for `BENCH_MODEL_UPLOADS_PER_HOUR` uploads (default 1000) of
//! `BENCH_MODEL_MIB` (default 500), `BENCH_MODEL_VIDEO_SHARE` of them videos
//! (default 0.2): cores per process kind, database growth, store requests, and
//! which limit comes first.
//!
//! Needs the local stack and release binaries:
//!     cargo build --release -p upload-server -p upload-worker
//!     cargo bench -p upload-e2e --bench capacity

use std::collections::BTreeMap;
use std::process::Stdio;
use std::sync::Arc;
use std::time::{Duration, Instant};

use diesel_async::RunQueryDsl;
use futures::StreamExt;
use upload_client::{SendOptions, UploadClient};
use upload_domain::SellerGroup;
use upload_e2e::bench::{ReleaseProcess, env_or, release_binary};
use upload_e2e::procfs::{children_of, cpu, cpu_whole, pid_file, rss_mib, stat};
use upload_e2e::{AppOptions, MIB, TestApp, TestFile, free_port, pb, scrape, test_tls, wait_item};

const GIB: f64 = 1024.0 * 1024.0 * 1024.0;
const PART: u64 = 16 * MIB;

/// The processes whose CPU time is read, by kind.
struct Meter {
    server: u32,
    worker: u32,
    clamd: u32,
    garage: u32,
    postmaster: u32,
}

/// CPU seconds by process kind (indexes: the `KINDS` below).
#[derive(Clone, Copy, Default)]
struct Cpu([f64; 6]);

const KINDS: [&str; 6] = ["server", "worker", "ffmpeg", "clamd", "garage", "postgres"];
const SERVER: usize = 0;
const WORKER: usize = 1;
const MEDIA: usize = 2;
const CLAMD: usize = 3;
const GARAGE: usize = 4;
const POSTGRES: usize = 5;

impl Cpu {
    fn minus(&self, earlier: &Cpu) -> Cpu {
        Cpu(std::array::from_fn(|i| self.0[i] - earlier.0[i]))
    }
    fn plus(&self, other: &Cpu) -> Cpu {
        Cpu(std::array::from_fn(|i| self.0[i] + other.0[i]))
    }
    fn scaled(&self, by: f64) -> Cpu {
        Cpu(self.0.map(|x| x * by))
    }
}

impl Meter {
    fn read(&self) -> Cpu {
        let (worker, media) = cpu(self.worker);
        let (pm, ended) = cpu(self.postmaster);
        let backends: f64 = children_of(self.postmaster)
            .into_iter()
            .map(cpu_whole)
            .sum();
        let mut cpu = Cpu::default();
        cpu.0[SERVER] = cpu_whole(self.server);
        cpu.0[WORKER] = worker;
        cpu.0[MEDIA] = media;
        cpu.0[CLAMD] = cpu_whole(self.clamd);
        cpu.0[GARAGE] = cpu_whole(self.garage);
        cpu.0[POSTGRES] = pm + ended + backends;
        cpu
    }
}

/// Store requests the server and the worker made so far, by operation.
async fn store_calls(urls: &[String]) -> BTreeMap<String, f64> {
    let mut calls = BTreeMap::new();
    for url in urls {
        let text = scrape(url).await.text;
        for line in text.lines() {
            let Some(labels) = line.strip_prefix("upload_dependency_calls_total{") else {
                continue;
            };
            let Some((labels, value)) = labels.rsplit_once("} ") else {
                continue;
            };
            if !labels.contains("dependency=\"store\"") {
                continue;
            }
            let call = labels
                .split(',')
                .find_map(|l| l.strip_prefix("call=\""))
                .map(|c| c.trim_end_matches('"').to_owned())
                .unwrap_or_default();
            *calls.entry(call).or_insert(0.0) += value.parse::<f64>().unwrap_or(0.0);
        }
    }
    calls
}

/// Rows, bytes (tables, indexes and TOAST) and the WAL position of the database.
#[derive(Default)]
struct DbSize {
    rows: BTreeMap<String, i64>,
    bytes: i64,
    wal: i64,
}

async fn db_size(app: &TestApp) -> DbSize {
    #[derive(diesel::QueryableByName)]
    struct Table {
        #[diesel(sql_type = diesel::sql_types::Text)]
        name: String,
    }
    #[derive(diesel::QueryableByName)]
    struct N {
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        n: i64,
    }
    let mut conn = app.db().await;
    let tables: Vec<Table> = diesel::sql_query(
        "SELECT table_schema || '.' || table_name AS name FROM information_schema.tables \
         WHERE table_schema IN ('public', 'apalis') AND table_type = 'BASE TABLE' \
         AND table_name <> '__diesel_schema_migrations'",
    )
    .load(&mut conn)
    .await
    .expect("tables");
    let mut size = DbSize::default();
    for t in tables {
        let n: N = diesel::sql_query(format!("SELECT count(*) AS n FROM {}", t.name))
            .get_result(&mut conn)
            .await
            .expect("count");
        size.rows.insert(t.name.clone(), n.n);
        let b: N = diesel::sql_query(format!(
            "SELECT pg_total_relation_size('{}')::bigint AS n",
            t.name
        ))
        .get_result(&mut conn)
        .await
        .expect("size");
        size.bytes += b.n;
    }
    let wal: N =
        diesel::sql_query("SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), '0/0')::bigint AS n")
            .get_result(&mut conn)
            .await
            .expect("wal");
    size.wal = wal.n;
    size
}

/// Creates an upload of `file` in 16 MiB parts.
async fn create(client: &UploadClient, file: &TestFile, name: &str) -> pb::Upload {
    client
        .create(name, file.size, "application/octet-stream", Some(PART))
        .await
        .expect("CreateUpload")
}

/// Sends every part of `file`, four at a time.
async fn send_all(client: &UploadClient, upload: &pb::Upload, file: &TestFile) {
    let parts: Vec<u32> = (1..=upload.part_count).collect();
    let options = SendOptions {
        concurrency: 4,
        attempts: 3,
        ..Default::default()
    };
    client
        .send_parts(upload, &file.path, &parts, options, |_, _| {})
        .await
        .expect("parts");
}

/// Completes an upload and follows it to the end, calling `on_update` on every
/// update; returns the last state.
async fn complete_and_follow(
    client: &UploadClient,
    upload_id: &str,
    mut on_update: impl FnMut(),
) -> pb::Upload {
    client.complete(upload_id).await.expect("complete");
    let mut watch = client.watch(upload_id).await.expect("watch");
    let mut last = None;
    while let Some(update) = watch.next().await {
        last = update.expect("update").upload.or(last);
        on_update();
    }
    last.expect("a final state")
}

/// Uploads `file`, completes it, follows it to the end; returns the last state.
async fn upload_to_settled(client: &UploadClient, file: &TestFile, name: &str) -> pb::Upload {
    let upload = create(client, file, name).await;
    send_all(client, &upload, file).await;
    complete_and_follow(client, &upload.upload_id, || {}).await
}

/// Submits a ready upload as a new item and waits until it is stored.
async fn store_item(client: &UploadClient, upload: &pb::Upload, key: &str) {
    let res = upload_e2e::submit_new_item(
        client,
        key,
        pb::ItemKind::DigitalFile,
        "Capacity",
        &upload.upload_id,
    )
    .await;
    let item = wait_item(
        client,
        &res.item.expect("item").item_id,
        Duration::from_secs(600),
    )
    .await;
    assert_eq!(item.state, pb::SubmissionState::Stored as i32, "{item:?}");
}

#[path = "capacity/model.rs"]
mod model;

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let small: usize = env_or("BENCH_SMALL", 100);
    let large: usize = env_or("BENCH_LARGE", 2);
    let large_mib: u64 = env_or("BENCH_LARGE_MIB", 512);
    let videos: usize = env_or("BENCH_VIDEOS", 3);
    let stack_dir = upload_e2e::stack_dir();

    let app = TestApp::spawn_with(AppOptions {
        worker: false,
        metrics: false,
        env: vec![(
            "UPLOAD_LIMIT_PREMIUM_BYTES".into(),
            (4096 * MIB).to_string(),
        )],
        ..Default::default()
    })
    .await;
    let grpc = free_port();
    let (server_metrics, worker_metrics) = (free_port(), free_port());
    let spawn = |binary: &str, metrics: u16| {
        let mut env = app.worker_env.clone();
        env.insert("RUST_LOG".into(), "warn".into());
        env.insert("UPLOAD_GRPC_ADDR".into(), format!("127.0.0.1:{grpc}"));
        env.insert("UPLOAD_METRICS_ADDR".into(), format!("127.0.0.1:{metrics}"));
        ReleaseProcess(
            std::process::Command::new(release_binary(binary))
                .env_clear()
                .envs(&env)
                .stdout(Stdio::null())
                .stderr(Stdio::inherit())
                .spawn()
                .unwrap_or_else(|e| panic!("starting {binary}: {e}")),
        )
    };
    let server = spawn("upload-server", server_metrics);
    let worker = spawn("upload-worker", worker_metrics);
    let endpoint = format!("https://127.0.0.1:{grpc}");
    let ca = test_tls().ca_pem.as_bytes();
    let connect = |seller: String, group: SellerGroup| {
        let token = app.token(&seller, group);
        let endpoint = endpoint.clone();
        async move {
            for _ in 0..100 {
                if let Ok(client) = UploadClient::connect_trusting(&endpoint, &token, ca).await {
                    return client;
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            panic!("the release server did not answer at {endpoint}")
        }
    };
    let metrics_urls = [
        format!("http://127.0.0.1:{server_metrics}/metrics"),
        format!("http://127.0.0.1:{worker_metrics}/metrics"),
    ];

    let postmaster = {
        #[derive(diesel::QueryableByName)]
        struct Pid {
            #[diesel(sql_type = diesel::sql_types::Integer)]
            pid: i32,
        }
        let mut conn = app.db().await;
        let backend: Pid = diesel::sql_query("SELECT pg_backend_pid() AS pid")
            .get_result(&mut conn)
            .await
            .expect("backend pid");
        stat(backend.pid as u32).expect("the backend's stat")[0] as u32
    };
    let meter = Meter {
        server: server.0.id(),
        worker: worker.0.id(),
        clamd: pid_file(&stack_dir.join("clamd/pid")),
        garage: pid_file(&stack_dir.join("garage/pid")),
        postmaster,
    };
    let client = Arc::new(connect("capacity-seller".into(), SellerGroup::Premium).await);
    // Fresh bytes each run: clamd skips files whose hash it has seen clean.
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(7, |d| d.as_nanos() as u64);

    // 1. Small uploads, to stored: the fixed cost of an upload.
    let files: Vec<TestFile> = (0..small)
        .map(|i| TestFile::random_seeded(256 * 1024, seed + i as u64))
        .collect();
    let (db0, calls0, cpu0) = (
        db_size(&app).await,
        store_calls(&metrics_urls).await,
        meter.read(),
    );
    let t = Instant::now();
    let files = Arc::new(files);
    let mut tasks = tokio::task::JoinSet::new();
    let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    for _ in 0..8 {
        let (client, files, next) = (Arc::clone(&client), Arc::clone(&files), Arc::clone(&next));
        tasks.spawn(async move {
            loop {
                let i = next.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                let Some(file) = files.get(i) else { return };
                let ready = upload_to_settled(&client, file, &format!("small-{i}.bin")).await;
                assert_eq!(ready.state, pb::UploadState::Ready as i32, "{ready:?}");
                store_item(&client, &ready, &format!("small-{seed}-{i}")).await;
            }
        });
    }
    while let Some(done) = tasks.join_next().await {
        done.expect("a small upload");
    }
    let small_elapsed = t.elapsed();
    let no_jobs_left =
        "SELECT count(*) FROM apalis.jobs WHERE status IN ('Pending', 'Queued', 'Running')";
    app.wait_count(no_jobs_left, 0, Duration::from_secs(60))
        .await;
    let (db1, calls1, cpu1) = (
        db_size(&app).await,
        store_calls(&metrics_urls).await,
        meter.read(),
    );
    let per_small = cpu1.minus(&cpu0).scaled(1.0 / small as f64);

    // 2. Large uploads: upload, complete → ready, submit → stored, each timed.
    let mut upload_cpu = Cpu::default();
    let mut ready_cpu = Cpu::default();
    let mut store_cpu = Cpu::default();
    let mut ready_time = Duration::ZERO;
    let mut clamd_peak = rss_mib(meter.clamd);
    let mut worker_peak = 0.0f64;
    for i in 0..large {
        let file = TestFile::random_seeded(large_mib * MIB, seed ^ (0xface + i as u64));
        let upload = create(&client, &file, "large.bin").await;
        let c0 = meter.read();
        send_all(&client, &upload, &file).await;
        let c1 = meter.read();
        let t = Instant::now();
        let ready = complete_and_follow(&client, &upload.upload_id, || {
            clamd_peak = clamd_peak.max(rss_mib(meter.clamd));
            worker_peak = worker_peak.max(rss_mib(meter.worker));
        })
        .await;
        ready_time += t.elapsed();
        assert_eq!(ready.state, pb::UploadState::Ready as i32, "{ready:?}");
        let c2 = meter.read();
        store_item(&client, &ready, &format!("large-{seed}-{i}")).await;
        app.wait_count(no_jobs_left, 0, Duration::from_secs(60))
            .await;
        let c3 = meter.read();
        upload_cpu = upload_cpu.plus(&c1.minus(&c0));
        ready_cpu = ready_cpu.plus(&c2.minus(&c1));
        store_cpu = store_cpu.plus(&c3.minus(&c2));
    }
    let large_gib = (large as u64 * large_mib * MIB) as f64 / GIB;
    let per_gib_upload = upload_cpu.scaled(1.0 / large_gib);
    let per_gib_ready = ready_cpu.scaled(1.0 / large_gib);
    let per_gib_store = store_cpu.scaled(1.0 / large_gib);
    let scan_rate_mib_s = (large as u64 * large_mib) as f64 / ready_time.as_secs_f64();

    // 3. Videos: a preview's cost beyond a plain file's.
    let clips: Vec<TestFile> = (0..videos).map(|_| TestFile::video(10, 640, 360)).collect();
    let v0 = meter.read();
    for (i, clip) in clips.iter().enumerate() {
        let ready = upload_to_settled(&client, clip, &format!("clip-{i}.mp4")).await;
        assert_eq!(ready.state, pb::UploadState::Ready as i32, "{ready:?}");
        assert!(
            !ready.previews.is_empty(),
            "a video has previews: {ready:?}"
        );
    }
    app.wait_count(no_jobs_left, 0, Duration::from_secs(60))
        .await;
    let per_video = meter.read().minus(&v0).scaled(1.0 / videos.max(1) as f64);

    // 4. Hashing alone, in this process (one thread).
    let hashed_mib = 512usize;
    let block = vec![0x5au8; MIB as usize];
    let (own0, _) = cpu(std::process::id());
    let hashing = std::thread::spawn(move || {
        use sha2::Digest as _;
        let (mut m, mut s) = (md5::Md5::default(), sha2::Sha256::default());
        for _ in 0..hashed_mib {
            md5::Digest::update(&mut m, &block);
            s.update(&block);
        }
        (md5::Digest::finalize(m).len(), s.finalize().len())
    });
    let _ = hashing.join().expect("hashing");
    let hash_per_gib = (cpu(std::process::id()).0 - own0) / (hashed_mib as f64 / 1024.0);

    // 5. SignPart: one part per call, then 64 per SignParts call.
    let sign = model::measure_signing(&client, &meter).await;

    let measured = model::Measured {
        small,
        small_elapsed,
        per_small,
        db_rows: db1
            .rows
            .iter()
            .map(|(t, n)| {
                (
                    t.clone(),
                    (n - db0.rows.get(t).copied().unwrap_or(0)) as f64 / small as f64,
                )
            })
            .filter(|(_, n)| *n > 0.0)
            .collect(),
        db_bytes: (db1.bytes - db0.bytes) as f64 / small as f64,
        wal_bytes: (db1.wal - db0.wal) as f64 / small as f64,
        store_calls: calls1
            .iter()
            .map(|(c, n)| {
                (
                    c.clone(),
                    (n - calls0.get(c).copied().unwrap_or(0.0)) / small as f64,
                )
            })
            .filter(|(_, n)| *n > 0.0)
            .collect(),
        large,
        large_mib,
        per_gib_upload,
        per_gib_ready,
        per_gib_store,
        scan_rate_mib_s,
        videos,
        per_video: per_video.minus(&per_small),
        hash_per_gib,
        sign,
        clamd_rss_mib: clamd_peak,
        worker_rss_mib: worker_peak,
    };
    measured.print();
    measured.model(
        env_or("BENCH_MODEL_UPLOADS_PER_HOUR", 1000.0),
        env_or("BENCH_MODEL_MIB", 500.0),
        env_or("BENCH_MODEL_VIDEO_SHARE", 0.2),
    );
}
