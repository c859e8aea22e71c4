//! The processing pipeline on a large file: CompleteUpload → ready (scan, hashes,
//! sniffing in two reads at once; metadata and preview stages), against, in the same run,
//! one plain GetObject stream of the same object and one plain clamd INSTREAM of
//! it; and the worker's peak memory.
//!
//! The pipeline runs first, on random bytes fresh to this run. clamd remembers
//! the hashes of clean files, so before the plain scan it is told to RELOAD (a new
//! engine with an empty cache): the plain scan really scans.
//!
//! Needs the local stack and a release worker binary:
//!     cargo build --release -p upload-worker
//!     cargo bench -p upload-e2e --bench pipeline
//! `BENCH_FILE_MIB` sets the file size (default 1024).

use std::process::Stdio;
use std::time::{Duration, Instant};

use futures::StreamExt;
use upload_domain::SellerGroup;
use upload_e2e::{AppOptions, TestApp, TestFile, pb, peak_rss_kib};

const MIB: u64 = 1024 * 1024;

/// Stops the worker process however the benchmark ends.
struct KillOnDrop(std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let size_mib: u64 = std::env::var("BENCH_FILE_MIB")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1024);
    let worker_bin =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/release/upload-worker");
    assert!(
        worker_bin.exists(),
        "build it first: cargo build --release -p upload-worker"
    );

    let app = TestApp::spawn_with(AppOptions {
        worker: false,
        ..Default::default()
    })
    .await;
    // The app's own database and buckets.
    let mut env = app.worker_env.clone();
    env.insert(
        "RUST_LOG".into(),
        std::env::var("BENCH_WORKER_LOG").unwrap_or_else(|_| "warn".into()),
    );
    let worker = KillOnDrop(
        std::process::Command::new(&worker_bin)
            .envs(&env)
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("starting the worker"),
    );
    let worker_pid = worker.0.id();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let idle_rss = peak_rss_kib(worker_pid).unwrap_or(0);

    // Fresh bytes every run: clamd skips files whose hash it has seen clean, and
    // would otherwise remember this file from the previous run.
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(1024);
    let file = TestFile::random_seeded(size_mib * MIB, seed);
    let client = app.client("bench-premium", SellerGroup::Premium).await;
    let upload = client
        .create(
            "big.bin",
            file.size,
            "application/octet-stream",
            Some(16 * MIB),
        )
        .await
        .expect("create");
    let all: Vec<u32> = (1..=upload.part_count).collect();
    let t = Instant::now();
    client
        .send_parts(
            &upload,
            &file.path,
            &all,
            upload_client::SendOptions {
                concurrency: 4,
                attempts: 3,
                ..Default::default()
            },
            |_, _| {},
        )
        .await
        .expect("parts");
    let upload_time = t.elapsed();

    let t = Instant::now();
    client.complete(&upload.upload_id).await.expect("complete");
    let mut watch = client.watch(&upload.upload_id).await.expect("watch");
    let mut last = None;
    let mut scan_started = None;
    let mut scan_done = None;
    while let Some(update) = watch.next().await {
        let update = update.expect("update");
        let scan = update
            .stages
            .iter()
            .find(|s| s.stage == pb::Stage::Scan as i32)
            .map(|s| s.status);
        if scan_started.is_none() && scan == Some(pb::StageStatus::Running as i32) {
            scan_started = Some(t.elapsed());
        }
        if scan_done.is_none() && scan == Some(pb::StageStatus::Done as i32) {
            scan_done = Some(t.elapsed());
        }
        last = update.upload;
    }
    let to_ready = t.elapsed();
    let scan_started = scan_started.unwrap_or_default();
    let scan_done = scan_done.unwrap_or_default();
    let last = last.expect("final state");
    assert_eq!(last.state, pb::UploadState::Ready as i32, "{last:?}");
    assert_eq!(last.metadata.expect("metadata").md5_hex, file.md5_hex);
    let worker_peak = peak_rss_kib(worker_pid).unwrap_or(0);
    // The worker records its finished jobs on its next heartbeat; then it may go.
    app.wait_count(
        "SELECT count(*) FROM apalis.jobs WHERE status IN ('Pending', 'Queued', 'Running')",
        0,
        Duration::from_secs(30),
    )
    .await;
    drop(worker);

    // The same object, read once as a plain stream, discarding the bytes.
    let (key, _) = app.upload_keys().await;
    let object = || async {
        app.store
            .client()
            .get_object()
            .bucket(app.store.bucket_name(upload_storage::Bucket::Temp))
            .key(&key)
            .send()
            .await
            .expect("GetObject")
            .body
    };
    let t = Instant::now();
    let mut body = object().await;
    let mut read = 0u64;
    while let Some(chunk) = body.next().await {
        read += chunk.expect("chunk").len() as u64;
    }
    let plain_get = t.elapsed();
    assert_eq!(read, file.size);

    // The same object streamed to clamd over INSTREAM in 1 MiB chunks, nothing else.
    let clamd_addr = env
        .get("UPLOAD_CLAMD_ADDR")
        .cloned()
        .expect("UPLOAD_CLAMD_ADDR in the stack env");
    let tcp = || clamav_client::tokio::Tcp {
        host_address: clamd_addr.as_str(),
    };
    clamav_client::tokio::reload(tcp()).await.expect("RELOAD");
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(
        clamav_client::tokio::ping(tcp()).await.expect("PING"),
        clamav_client::PONG
    );
    let t = Instant::now();
    let body = object().await;
    let sent = std::sync::Arc::new(std::sync::Mutex::new(Duration::ZERO));
    let sent_at = std::sync::Arc::clone(&sent);
    let stream = futures::stream::unfold(body, move |mut body| {
        let sent_at = std::sync::Arc::clone(&sent_at);
        async move {
            let next = body.next().await;
            if next.is_none()
                && let Ok(mut at) = sent_at.lock()
            {
                *at = t.elapsed();
            }
            next.map(|chunk| (chunk.map_err(std::io::Error::other), body))
        }
    });
    let reply = clamav_client::tokio::scan_stream(stream, tcp(), Some(MIB as usize))
        .await
        .expect("clamd INSTREAM");
    let plain_scan = t.elapsed();
    let plain_sent = sent.lock().map(|d| *d).unwrap_or_default();
    let reply = String::from_utf8_lossy(&reply);
    assert!(reply.contains("OK"), "{reply}");

    let rate = |d: Duration| file.size as f64 / d.as_secs_f64() / 1e6;
    println!();
    println!("| measurement ({size_mib:>4} MiB file)                | time s | MB/s  |");
    println!("|--------------------------------------------|--------|-------|");
    println!(
        "| upload, 16 MiB parts, 4 at a time          | {:>6.2} | {:>5.0} |",
        upload_time.as_secs_f64(),
        rate(upload_time)
    );
    println!(
        "| CompleteUpload → ready (scan+hash+stages)  | {:>6.2} | {:>5.0} |",
        to_ready.as_secs_f64(),
        rate(to_ready)
    );
    println!(
        "| plain GetObject stream of the same object  | {:>6.2} | {:>5.0} |",
        plain_get.as_secs_f64(),
        rate(plain_get)
    );
    println!(
        "| plain clamd INSTREAM of the same object    | {:>6.2} | {:>5.0} |",
        plain_scan.as_secs_f64(),
        rate(plain_scan)
    );
    println!(
        "|   of which: bytes sent to clamd            | {:>6.2} | {:>5.0} |",
        plain_sent.as_secs_f64(),
        rate(plain_sent)
    );
    println!(
        "|   of which: queued → scan running          | {:>6.2} |       |",
        scan_started.as_secs_f64()
    );
    println!(
        "|   of which: scan + hashes (two reads)      | {:>6.2} | {:>5.0} |",
        (scan_done - scan_started).as_secs_f64(),
        rate(scan_done - scan_started)
    );
    println!(
        "|   of which: scan done → ready              | {:>6.2} |       |",
        (to_ready - scan_done).as_secs_f64()
    );
    let slower = plain_get.max(plain_scan);
    println!();
    println!(
        "ready / slower plain read: {:.2}× (target ≤ 1.25×); worker peak RSS {:.1} MiB (idle {:.1} MiB; target < 128 MiB)",
        to_ready.as_secs_f64() / slower.as_secs_f64(),
        worker_peak as f64 / 1024.0,
        idle_rss as f64 / 1024.0
    );
}
