//! The re-scan of the stored catalogue against, in the same run, plain clamd
//! INSTREAMs of the same objects: 2 GiB of stored objects (8 of 256 MiB, random
//! bytes fresh to this run) are recorded as scanned with database A, clamd is
//! switched to database B (RELOAD, which also empties its cache of clean hashes), a
//! worker re-scans them unthrottled, then clamd is reloaded again and each object is
//! streamed from the store to clamd with nothing else.
//!
//! Needs the local stack:
//!     cargo bench -p upload-e2e --bench rescan
//! `BENCH_RESCAN_MIB` sets the catalogue's size (default 2048), `BENCH_OBJECT_MIB`
//! each object's (default 256).

use std::time::{Duration, Instant};

use upload_e2e::{AppOptions, Clamd, TestApp, TestFile, free_port, signatures_b};

const MIB: u64 = 1024 * 1024;

fn env_mib(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let total_mib = env_mib("BENCH_RESCAN_MIB", 2048);
    let object_mib = env_mib("BENCH_OBJECT_MIB", 256);
    let count = (total_mib / object_mib).max(1);
    let clamd = Clamd::start(free_port()).await;
    let app = TestApp::spawn_with(AppOptions {
        worker: false,
        ..Default::default()
    })
    .await;
    let regular = app.bucket(upload_storage::Bucket::Regular).to_owned();

    // The catalogue: objects at their MD5 keys, recorded as scanned with database A.
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(1);
    let mut keys = Vec::new();
    for i in 0..count {
        let file = TestFile::random_seeded(object_mib * MIB, seed + i);
        let key = format!("files/{}", file.md5_hex);
        app.store
            .client()
            .put_object()
            .bucket(&regular)
            .key(&key)
            .body(
                aws_sdk_s3::primitives::ByteStream::from_path(&file.path)
                    .await
                    .expect("file"),
            )
            .send()
            .await
            .expect("PutObject");
        app.execute(&format!(
            "INSERT INTO stored_objects (md5_hex, sha256_hex, size_bytes, object_key,
                 engine_version, signature_version, scanned_at)
             VALUES ('{}', '{}', {}, '{key}', 'ClamAV bench', 1, now())",
            file.md5_hex, file.sha256_hex, file.size
        ))
        .await;
        keys.push(key);
    }
    let bytes = count * object_mib * MIB;

    // Database B: the worker sees it and re-scans everything, unthrottled.
    clamd.switch_signatures(&signatures_b()).await;
    let worker = TestApp::spawn_worker_for(
        &app,
        AppOptions {
            env: vec![
                ("UPLOAD_CLAMD_ADDR".into(), clamd.addr()),
                ("UPLOAD_SIGNATURE_CHECK_SECS".into(), "1".into()),
                (
                    "UPLOAD_RESCAN_BYTES_PER_SEC".into(),
                    (1u64 << 40).to_string(),
                ),
            ],
            ..Default::default()
        },
    )
    .await;
    app.wait_count(
        "SELECT count(*) FROM rescan_runs WHERE state = 'finished' AND objects_done = objects_total",
        1,
        Duration::from_secs(3600),
    )
    .await;
    let rescan_ms = app
        .count(
            "SELECT (extract(epoch FROM finished_at - started_at) * 1000)::bigint FROM rescan_runs",
        )
        .await;
    let rescan = Duration::from_millis(u64::try_from(rescan_ms).unwrap_or(0));
    drop(worker);

    // The same objects, each streamed from the store to clamd and nothing else,
    // after a RELOAD so that clamd really scans them again.
    let addr = clamd.addr();
    let tcp = || clamav_client::tokio::Tcp {
        host_address: addr.as_str(),
    };
    clamav_client::tokio::reload(tcp()).await.expect("RELOAD");
    tokio::time::sleep(Duration::from_secs(2)).await;
    let t = Instant::now();
    for key in &keys {
        let body = app
            .store
            .client()
            .get_object()
            .bucket(&regular)
            .key(key)
            .send()
            .await
            .expect("GetObject")
            .body;
        let stream = futures::stream::unfold(body, |mut body| async move {
            body.next()
                .await
                .map(|chunk| (chunk.map_err(std::io::Error::other), body))
        });
        let reply = clamav_client::tokio::scan_stream(stream, tcp(), Some(MIB as usize))
            .await
            .expect("INSTREAM");
        assert!(String::from_utf8_lossy(&reply).contains("OK"));
    }
    let plain = t.elapsed();

    let rate = |d: Duration| bytes as f64 / d.as_secs_f64() / 1e6;
    println!();
    println!(
        "| {count} objects of {object_mib} MiB ({total_mib} MiB)                 | time s | MB/s  |"
    );
    println!("|--------------------------------------------------|--------|-------|");
    println!(
        "| re-scan run (read, clamd, MD5, SHA-256, records) | {:>6.2} | {:>5.0} |",
        rescan.as_secs_f64(),
        rate(rescan)
    );
    println!(
        "| plain GetObject → clamd INSTREAM, one by one      | {:>6.2} | {:>5.0} |",
        plain.as_secs_f64(),
        rate(plain)
    );
    println!();
    println!(
        "re-scan / plain INSTREAM: {:.2}×",
        rescan.as_secs_f64() / plain.as_secs_f64()
    );
}
