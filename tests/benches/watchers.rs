//! What watchers cost the server and the store: WatchProgress streams of unfinished
//! uploads, against a release server of its own (its RSS and its store calls read
//! apart from this benchmark's clients).
//!
//! 1. One upload with a part missing, watched by 1 and then by `BENCH_WATCHERS`
//!    (default 200) streams for `BENCH_SECS` (default 20) each: the ListParts calls
//!    the server made for it in that time (its `/metrics`). One feed per upload
//!    serves every watcher, so both counts are about the same.
//! 2. `BENCH_IDLE_UPLOADS` (default 200) created uploads, each watched by
//!    `BENCH_IDLE_PER_UPLOAD` (default 10) idle streams: the server's resident memory
//!    before and with them all open, and its feeds.
//!
//! Needs the local stack and the release server:
//!     cargo build --release -p upload-server
//!     cargo bench -p upload-e2e --bench watchers

use std::process::Stdio;
use std::time::{Duration, Instant};

use futures::StreamExt;
use upload_client::UploadClient;
use upload_domain::SellerGroup;
use upload_e2e::bench::{ReleaseProcess, env_or, release_binary};
use upload_e2e::procfs::rss_mib;
use upload_e2e::{AppOptions, MIB, TestApp, TestFile, free_port, scrape, test_tls};

/// The store's ListParts calls the server has made so far.
async fn list_parts_calls(metrics: &str) -> f64 {
    let labels = [
        ("dependency", "store"),
        ("call", "ListParts"),
        ("outcome", "ok"),
    ];
    scrape(metrics)
        .await
        .value("upload_dependency_calls_total", &labels)
}

/// Opens `count` watches of `upload` over `clients` (spread, a hundred streams a
/// connection at most), each reading its first snapshot; returns them open.
async fn open_watches(
    clients: &[UploadClient],
    upload: &str,
    count: usize,
) -> Vec<tonic::Streaming<upload_client::pb::WatchProgressResponse>> {
    let mut streams = Vec::with_capacity(count);
    for i in 0..count {
        let mut stream = clients[i % clients.len()]
            .watch(upload)
            .await
            .expect("WatchProgress");
        stream
            .next()
            .await
            .expect("a first snapshot")
            .expect("a snapshot");
        streams.push(stream);
    }
    streams
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let watchers: usize = env_or("BENCH_WATCHERS", 200);
    let secs: u64 = env_or("BENCH_SECS", 20);
    let idle_uploads: usize = env_or("BENCH_IDLE_UPLOADS", 200);
    let per_upload: usize = env_or("BENCH_IDLE_PER_UPLOAD", 10);

    let app = TestApp::spawn_with(AppOptions {
        worker: false,
        metrics: false,
        ..Default::default()
    })
    .await;
    let (grpc, metrics_port) = (free_port(), free_port());
    let binary = release_binary("upload-server");
    let mut env = app.worker_env.clone();
    env.insert("RUST_LOG".into(), "warn".into());
    env.insert("UPLOAD_GRPC_ADDR".into(), format!("127.0.0.1:{grpc}"));
    env.insert(
        "UPLOAD_METRICS_ADDR".into(),
        format!("127.0.0.1:{metrics_port}"),
    );
    let server = ReleaseProcess(
        std::process::Command::new(&binary)
            .env_clear()
            .envs(&env)
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("starting the release server"),
    );
    let pid = server.0.id();
    let metrics = format!("http://127.0.0.1:{metrics_port}/metrics");
    let endpoint = format!("https://127.0.0.1:{grpc}");
    let ca = test_tls().ca_pem.as_bytes();
    let token = app.token("watch-bench", SellerGroup::Standard);
    let mut clients = Vec::new();
    // A connection carries at most a hundred streams here.
    let connections = (watchers.max(idle_uploads * per_upload)).div_ceil(100);
    for _ in 0..connections {
        let mut tries = 0;
        let client = loop {
            match UploadClient::connect_trusting(&endpoint, &token, ca).await {
                Ok(client) => break client,
                Err(_) if tries < 100 => {
                    tries += 1;
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                Err(e) => panic!("the release server did not answer: {e}"),
            }
        };
        clients.push(client);
    }

    // 1. One unfinished upload, watched by one and then by many.
    let file = TestFile::random(12 * MIB);
    let upload = clients[0]
        .create(
            "watched.bin",
            file.size,
            "application/octet-stream",
            Some(5 * MIB),
        )
        .await
        .expect("CreateUpload");
    clients[0]
        .send_parts(&upload, &file.path, &[1], Default::default(), |_, _| {})
        .await
        .expect("part 1");
    let mut rows = Vec::new();
    for count in [1, watchers] {
        let streams = open_watches(&clients, &upload.upload_id, count).await;
        let before = list_parts_calls(&metrics).await;
        let started = Instant::now();
        tokio::time::sleep(Duration::from_secs(secs)).await;
        let calls = list_parts_calls(&metrics).await - before;
        rows.push((count, calls, started.elapsed().as_secs_f64()));
        drop(streams);
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    println!(
        "\nStore calls of watchers of one unfinished upload ({secs} s each, refresh every 2 s):"
    );
    println!("| watchers | ListParts calls | per second |");
    println!("| ---: | ---: | ---: |");
    for (count, calls, took) in &rows {
        println!("| {count} | {calls:.0} | {:.2} |", calls / took);
    }
    let ratio = rows[1].1 / rows[0].1.max(1.0);
    println!("{watchers} watchers / 1 watcher, store calls: {ratio:.2}");

    // 2. Many idle watchers over many uploads: the server's memory.
    let mut uploads = Vec::with_capacity(idle_uploads);
    for i in 0..idle_uploads {
        uploads.push(
            clients[i % clients.len()]
                .create(
                    &format!("idle-{i}.bin"),
                    6 * MIB,
                    "application/octet-stream",
                    None,
                )
                .await
                .expect("CreateUpload")
                .upload_id,
        );
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    let before = rss_mib(pid);
    let started = Instant::now();
    let mut streams = Vec::with_capacity(idle_uploads * per_upload);
    for (i, upload) in uploads.iter().enumerate() {
        let spread: Vec<UploadClient> = (0..per_upload)
            .map(|j| clients[(i * per_upload + j) % clients.len()].clone())
            .collect();
        streams.extend(open_watches(&spread, upload, per_upload).await);
    }
    let opened = started.elapsed();
    tokio::time::sleep(Duration::from_secs(5)).await;
    let with = rss_mib(pid);
    let feeds = scrape(&metrics).await.value("upload_watch_feeds", &[]);
    println!(
        "\nIdle watchers: {} streams over {idle_uploads} uploads, opened in {:.1} s",
        streams.len(),
        opened.as_secs_f64()
    );
    println!("| server RSS before | with them open | grown | feeds |");
    println!("| ---: | ---: | ---: | ---: |");
    println!(
        "| {before:.1} MiB | {with:.1} MiB | {:.1} MiB | {feeds:.0} |",
        with - before
    );
    drop(streams);
    drop(server);
}
