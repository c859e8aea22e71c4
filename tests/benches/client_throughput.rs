//! The Rust client's upload throughput against a plain aws-sdk-s3 multipart upload of
//! the same file, same part size and concurrency, in the same run, to the local store.
//!
//! The client does everything it does for a seller: reads each part, computes its
//! MD5, signs in batches through the server (which records every signed part in
//! PostgreSQL), PUTs with the MD5 pinned, completes through the server (which lists
//! and checks the parts). The plain upload reads each part and calls UploadPart with
//! the store's own credentials: no MD5, no server.
//!
//! Runs alternate (plain, client, plain, client, …) so that neither gets the warmer
//! page cache or the emptier store. Then, if `target/release/upload` exists, the CLI
//! uploads the same file once as its own process and its peak memory is printed: it
//! stays near concurrency × part size (plus two 1 MiB blocks and the runtime),
//! whatever the file's size.
//! Needs the local stack:
//!     cargo build --release -p upload-client   # optional, for the CLI's memory
//!     cargo bench -p upload-e2e --bench client_throughput
//! `BENCH_FILE_MIB` (default 1024), `BENCH_PART_MIB` (16), `BENCH_CONCURRENCY` (4),
//! `BENCH_ROUNDS` (3).

use std::os::unix::fs::FileExt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use aws_sdk_s3::types::{CompletedMultipartUpload, CompletedPart};
use upload_client::SendOptions;
use upload_domain::SellerGroup;
use upload_e2e::bench::env_or;
use upload_e2e::{AppOptions, TestApp, TestFile};

const MIB: u64 = 1024 * 1024;

/// The machine's (busy, total) CPU ticks so far, from /proc/stat.
fn cpu_ticks() -> (u64, u64) {
    let stat = std::fs::read_to_string("/proc/stat").unwrap_or_default();
    let values: Vec<u64> = stat
        .lines()
        .next()
        .unwrap_or("")
        .split_whitespace()
        .skip(1)
        .filter_map(|v| v.parse().ok())
        .collect();
    let total: u64 = values.iter().sum();
    let idle = values.get(3).copied().unwrap_or(0) + values.get(4).copied().unwrap_or(0);
    (total - idle, total)
}

/// Runs `f`, returning its time and the share of the machine's CPU busy meanwhile.
async fn measured<F: std::future::Future<Output = Duration>>(f: F) -> (Duration, f64) {
    let (b0, t0) = cpu_ticks();
    let took = f.await;
    let (b1, t1) = cpu_ticks();
    (took, 100.0 * (b1 - b0) as f64 / (t1 - t0).max(1) as f64)
}

async fn plain_upload(app: &TestApp, file: &TestFile, part: u64, concurrency: usize) -> Duration {
    let client = app.store.client().clone();
    let bucket = app.temp_bucket().to_owned();
    let key = format!("bench/plain-{}", uuid::Uuid::now_v7().simple());
    let started = Instant::now();
    let id = client
        .create_multipart_upload()
        .bucket(&bucket)
        .key(&key)
        .send()
        .await
        .expect("CreateMultipartUpload")
        .upload_id
        .expect("upload id");
    let count = file.size.div_ceil(part);
    let queue = Arc::new(std::sync::Mutex::new((1..=count).collect::<Vec<u64>>()));
    let handle = Arc::new(std::fs::File::open(&file.path).expect("open"));
    let mut slots = tokio::task::JoinSet::new();
    for _ in 0..concurrency {
        let (client, bucket, key, id) = (client.clone(), bucket.clone(), key.clone(), id.clone());
        let (queue, handle, size) = (Arc::clone(&queue), Arc::clone(&handle), file.size);
        slots.spawn(async move {
            let mut done = Vec::new();
            loop {
                let next = queue.lock().unwrap().pop();
                let Some(n) = next else { break };
                let offset = (n - 1) * part;
                let len = part.min(size - offset) as usize;
                let handle = Arc::clone(&handle);
                let body = tokio::task::spawn_blocking(move || {
                    let mut buf = vec![0u8; len];
                    handle.read_exact_at(&mut buf, offset).expect("read");
                    buf
                })
                .await
                .unwrap();
                let out = client
                    .upload_part()
                    .bucket(&bucket)
                    .key(&key)
                    .upload_id(&id)
                    .part_number(n as i32)
                    .body(body.into())
                    .send()
                    .await
                    .expect("UploadPart");
                done.push(
                    CompletedPart::builder()
                        .part_number(n as i32)
                        .set_e_tag(out.e_tag)
                        .build(),
                );
            }
            done
        });
    }
    let mut parts = Vec::new();
    while let Some(done) = slots.join_next().await {
        parts.extend(done.unwrap());
    }
    parts.sort_by_key(|p| p.part_number);
    client
        .complete_multipart_upload()
        .bucket(&bucket)
        .key(&key)
        .upload_id(&id)
        .multipart_upload(
            CompletedMultipartUpload::builder()
                .set_parts(Some(parts))
                .build(),
        )
        .send()
        .await
        .expect("CompleteMultipartUpload");
    let took = started.elapsed();
    let _ = client
        .delete_object()
        .bucket(&bucket)
        .key(&key)
        .send()
        .await;
    took
}

async fn client_upload(app: &TestApp, file: &TestFile, part: u64, concurrency: usize) -> Duration {
    let client = app.client("bench-seller", SellerGroup::Premium).await;
    let started = Instant::now();
    let upload = client
        .start_file(&file.path, "application/octet-stream", Some(part))
        .await
        .expect("CreateUpload");
    let all: Vec<u32> = (1..=upload.part_count).collect();
    client
        .send_parts(
            &upload,
            &file.path,
            &all,
            SendOptions {
                concurrency,
                ..SendOptions::default()
            },
            |_, _| {},
        )
        .await
        .expect("parts");
    client.complete(&upload.upload_id).await.expect("complete");
    let took = started.elapsed();
    let key = app.temp_key(&upload.upload_id).await;
    let _ = app
        .store
        .client()
        .delete_object()
        .bucket(app.temp_bucket())
        .key(key)
        .send()
        .await;
    took
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let size = env_or("BENCH_FILE_MIB", 1024) * MIB;
    let part = env_or("BENCH_PART_MIB", 16) * MIB;
    let concurrency: usize = env_or("BENCH_CONCURRENCY", 4);
    let rounds: u64 = env_or("BENCH_ROUNDS", 3);
    let app = TestApp::spawn_with(AppOptions {
        worker: false,
        ..Default::default()
    })
    .await;
    // Every completed upload (one per round, and the CLI's) queues a scan that no
    // worker runs here.
    let cli = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/release/upload");
    app.expect_unfinished_jobs(i64::try_from(rounds).unwrap_or(0) + i64::from(cli.exists()));
    let file = TestFile::random(size);
    // Warm the page cache and the connections once, unmeasured.
    let _ = plain_upload(&app, &file, part, concurrency).await;

    let mb = size as f64 / 1e6;
    println!(
        "upload of {} MiB, {} MiB parts, {concurrency} at a time, local Garage",
        size / MIB,
        part / MIB
    );
    println!(
        "{:<6} {:>12} {:>12} {:>12} {:>12}",
        "round", "plain s", "plain MB/s", "client s", "client MB/s"
    );
    let (mut plain_total, mut client_total) = (Duration::ZERO, Duration::ZERO);
    for round in 1..=rounds {
        let (p, p_cpu) = measured(plain_upload(&app, &file, part, concurrency)).await;
        let (c, c_cpu) = measured(client_upload(&app, &file, part, concurrency)).await;
        plain_total += p;
        client_total += c;
        println!(
            "{round:<6} {:>10.2} {:>11.1} {:>9.0}% {:>10.2} {:>11.1} {:>9.0}%",
            p.as_secs_f64(),
            mb / p.as_secs_f64(),
            p_cpu,
            c.as_secs_f64(),
            mb / c.as_secs_f64(),
            c_cpu
        );
    }
    let plain_rate = mb * rounds as f64 / plain_total.as_secs_f64();
    let client_rate = mb * rounds as f64 / client_total.as_secs_f64();
    println!(
        "{:<6} {:>10} {:>11.1} {:>10} {:>10} {:>11.1}",
        "all", "", plain_rate, "", "", client_rate
    );
    println!("client / plain throughput: {:.3}", client_rate / plain_rate);

    if !cli.exists() {
        println!("(no target/release/upload: build it to measure the CLI's memory)");
        return;
    }
    let state = tempfile::tempdir().expect("state dir");
    let started = Instant::now();
    let mut child = std::process::Command::new(&cli)
        .args(["--endpoint", &app.endpoint])
        .args(app.cli_tls_args())
        .arg("--token")
        .arg(app.token("bench-seller", SellerGroup::Premium))
        .args(["--plain", "put"])
        .arg(&file.path)
        .args([
            "--part-size",
            &part.to_string(),
            "--concurrency",
            &concurrency.to_string(),
        ])
        .args(["--no-watch", "--state-dir"])
        .arg(state.path())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("starting the CLI");
    let mut peak_kib = 0u64;
    let status = loop {
        if let Some(kib) = upload_e2e::peak_rss_kib(child.id()) {
            peak_kib = peak_kib.max(kib);
        }
        if let Some(status) = child.try_wait().expect("CLI status") {
            break status;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert!(status.success(), "the CLI upload failed");
    // The client's README: one part per slot and two 1 MiB blocks for hashing.
    let buffers_mib = (concurrency as u64 * part / MIB + 2) as f64;
    let peak_mib = peak_kib as f64 / 1024.0;
    println!(
        "CLI process: {:.1} MB/s, peak memory {peak_mib:.0} MiB for a {} MiB file; its buffers ({concurrency} × {} MiB parts + 2 × 1 MiB hashing) {buffers_mib:.0} MiB: peak / buffers {:.2}",
        mb / started.elapsed().as_secs_f64(),
        size / MIB,
        part / MIB,
        peak_mib / buffers_mib,
    );
}
