//! SignPart throughput and latency over loopback, database writes included.
//!
//! Needs the local stack (`deploy/local/stack.sh up`). Run:
//!     cargo bench -p upload-e2e --bench sign_parts
//! Prints one row per scenario: calls and signed parts per second, and per-call
//! latency percentiles. Parts signed in a batch count one by one.
//!
//! Two kinds of load:
//! - closed loop ("as fast as possible"): `concurrency` callers, each sending its
//!   next call when the previous answers. At saturation this measures queueing:
//!   by Little's law, latency = concurrency / throughput.
//! - open loop ("at a fixed rate", as wrk2 does): calls are scheduled at a steady
//!   rate of parts per second, at most `concurrency` in flight; a call's latency
//!   runs from its scheduled start, so a call delayed by a full pipeline counts
//!   its wait (no coordinated omission). This is the latency a seller's client
//!   sees while the service carries that load.

use std::sync::Arc;
use std::time::{Duration, Instant};

use md5::Digest;
use tonic::metadata::MetadataValue;
use tonic::transport::Channel;
use upload_domain::SellerGroup;
use upload_e2e::{AppOptions, TestApp, pb};
use upload_proto::v1::upload_service_client::UploadServiceClient;

const MIB: u64 = 1024 * 1024;
const PART: u64 = 5 * MIB;
const PARTS_PER_UPLOAD: u32 = 10_000;

struct Row {
    scenario: &'static str,
    concurrency: usize,
    batch: u32,
    calls: usize,
    parts: usize,
    elapsed: Duration,
    p50: Duration,
    p99: Duration,
    max: Duration,
}

impl Row {
    /// A scenario's row from every call's latency.
    fn new(
        scenario: &'static str,
        concurrency: usize,
        batch: u32,
        mut latencies: Vec<Duration>,
        parts: usize,
        elapsed: Duration,
    ) -> Self {
        latencies.sort_unstable();
        Self {
            scenario,
            concurrency,
            batch,
            calls: latencies.len(),
            parts,
            elapsed,
            p50: percentile(&latencies, 0.50),
            p99: percentile(&latencies, 0.99),
            max: latencies.last().copied().unwrap_or_default(),
        }
    }
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let idx = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[idx]
}

async fn run(
    channels: &[Channel],
    token: &str,
    uploads: &[String],
    scenario: &'static str,
    concurrency: usize,
    batch: u32,
    duration: Duration,
) -> Row {
    let md5 = md5::Md5::digest(b"benchmark part").to_vec();
    let auth: MetadataValue<_> = format!("Bearer {token}").parse().expect("token header");
    let start = Instant::now();
    let deadline = start + duration;
    let mut tasks = tokio::task::JoinSet::new();
    for slot in 0..concurrency {
        let mut api = UploadServiceClient::new(channels[slot % channels.len()].clone());
        let upload_id = uploads[slot % uploads.len()].clone();
        let md5 = md5.clone();
        let auth = auth.clone();
        tasks.spawn(async move {
            let mut latencies = Vec::new();
            let mut parts = 0usize;
            let mut next = 1u32;
            while Instant::now() < deadline {
                let numbers: Vec<u32> = (0..batch)
                    .map(|i| (next + i - 1) % PARTS_PER_UPLOAD + 1)
                    .collect();
                next = next % PARTS_PER_UPLOAD + batch;
                let to_sign: Vec<pb::PartToSign> = numbers
                    .iter()
                    .map(|&n| pb::PartToSign {
                        checksum_sha256: Vec::new(),
                        part_number: n,
                        content_md5: md5.clone(),
                        content_length: PART,
                    })
                    .collect();
                let t = Instant::now();
                let signed = if batch == 1 {
                    let mut req = tonic::Request::new(pb::SignPartRequest {
                        upload_id: upload_id.clone(),
                        part: to_sign.into_iter().next(),
                    });
                    req.metadata_mut().insert("authorization", auth.clone());
                    api.sign_part(req)
                        .await
                        .map(|r| usize::from(r.into_inner().part.is_some()))
                } else {
                    let mut req = tonic::Request::new(pb::SignPartsRequest {
                        upload_id: upload_id.clone(),
                        parts: to_sign,
                    });
                    req.metadata_mut().insert("authorization", auth.clone());
                    api.sign_parts(req)
                        .await
                        .map(|r| r.into_inner().parts.len())
                };
                latencies.push(t.elapsed());
                parts += signed.expect("signing failed during the benchmark");
            }
            (latencies, parts)
        });
    }
    let mut latencies = Vec::new();
    let mut parts = 0;
    while let Some(done) = tasks.join_next().await {
        let (l, p) = done.expect("benchmark task");
        latencies.extend(l);
        parts += p;
    }
    Row::new(
        scenario,
        concurrency,
        batch,
        latencies,
        parts,
        start.elapsed(),
    )
}

/// Open loop: `rate` parts per second in calls of `batch` parts, at most
/// `concurrency` calls in flight.
#[allow(clippy::too_many_arguments)]
async fn run_open(
    channels: &[Channel],
    token: &str,
    uploads: &[String],
    scenario: &'static str,
    concurrency: usize,
    batch: u32,
    rate: f64,
    duration: Duration,
) -> Row {
    let md5 = md5::Md5::digest(b"benchmark part").to_vec();
    let auth: MetadataValue<_> = format!("Bearer {token}").parse().expect("token header");
    let permits = Arc::new(tokio::sync::Semaphore::new(concurrency));
    let every = Duration::from_secs_f64(f64::from(batch) / rate);
    let start = Instant::now();
    // The schedule comes from a thread of its own: tokio's timer fires on whole
    // milliseconds, which would add up to a millisecond of the generator's own
    // lateness to every call. A thread's sleep is accurate to tens of microseconds.
    let (ticks, mut due) = tokio::sync::mpsc::unbounded_channel::<Instant>();
    let pacer = std::thread::spawn(move || {
        let mut next = start;
        while next.duration_since(start) < duration {
            if let Some(wait) = next.checked_duration_since(Instant::now()) {
                std::thread::sleep(wait);
            }
            if ticks.send(next).is_err() {
                return;
            }
            next += every;
        }
    });
    let mut tasks = tokio::task::JoinSet::new();
    let mut call = 0u64;
    while let Some(scheduled) = due.recv().await {
        let permit = Arc::clone(&permits)
            .acquire_owned()
            .await
            .expect("semaphore");
        let slot = (call % concurrency as u64) as usize;
        let mut api = UploadServiceClient::new(channels[slot % channels.len()].clone());
        let upload_id = uploads[slot % uploads.len()].clone();
        let first = ((call * u64::from(batch)) % u64::from(PARTS_PER_UPLOAD)) as u32;
        let parts: Vec<pb::PartToSign> = (0..batch)
            .map(|i| pb::PartToSign {
                checksum_sha256: Vec::new(),
                part_number: (first + i) % PARTS_PER_UPLOAD + 1,
                content_md5: md5.clone(),
                content_length: PART,
            })
            .collect();
        let mut req = tonic::Request::new(pb::SignPartsRequest { upload_id, parts });
        req.metadata_mut().insert("authorization", auth.clone());
        call += 1;
        tasks.spawn(async move {
            let signed = api
                .sign_parts(req)
                .await
                .map(|r| r.into_inner().parts.len())
                .expect("signing failed during the benchmark");
            drop(permit);
            (scheduled.elapsed(), signed)
        });
    }
    pacer.join().expect("pacer thread");
    let mut latencies = Vec::new();
    let mut parts = 0;
    while let Some(done) = tasks.join_next().await {
        let (l, p) = done.expect("benchmark task");
        latencies.push(l);
        parts += p;
    }
    Row::new(
        scenario,
        concurrency,
        batch,
        latencies,
        parts,
        start.elapsed(),
    )
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let seconds: u64 = std::env::var("BENCH_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(5);
    let app = TestApp::spawn_with(AppOptions {
        worker: false,
        env: vec![
            (
                "UPLOAD_LIMIT_PREMIUM_BYTES".into(),
                (u64::from(PARTS_PER_UPLOAD) * PART).to_string(),
            ),
            ("UPLOAD_DATABASE_POOL_SIZE".into(), "16".into()),
        ],
        ..Default::default()
    })
    .await;
    let token = app.token("bench-seller", SellerGroup::Premium);
    let client = app.client("bench-seller", SellerGroup::Premium).await;
    let mut uploads = Vec::new();
    for i in 0..32 {
        let u = client
            .create(
                &format!("bench-{i}.mp4"),
                u64::from(PARTS_PER_UPLOAD) * PART,
                "video/mp4",
                Some(PART),
            )
            .await
            .expect("CreateUpload");
        uploads.push(u.upload_id);
    }
    // The signing step alone, in process: no RPC, no database.
    let presign_only = {
        let md5 = upload_domain::Md5Digest::from_bytes(&md5::Md5::digest(b"x")).expect("md5");
        let n = 20_000u32;
        let owner: upload_domain::SellerId = "bench".parse().expect("seller id");
        let multipart = upload_storage::MultipartUpload::of(
            &owner,
            upload_domain::UploadId::new(),
            "upload-id",
        );
        let t = Instant::now();
        for i in 0..n {
            let part =
                upload_domain::PartPlan::new(u64::from(PARTS_PER_UPLOAD) * PART, Some(PART), PART)
                    .and_then(|p| p.part_number(i % PARTS_PER_UPLOAD + 1))
                    .expect("part");
            app.store
                .presign_parts(
                    &multipart,
                    &[(part, upload_domain::PartPin::Md5(md5), PART)],
                    Duration::from_secs(900),
                )
                .expect("presign");
        }
        t.elapsed() / n
    };
    let mut channels = Vec::new();
    for _ in 0..4 {
        channels.push(app.channel().await);
    }
    let channels = Arc::new(channels);
    let d = Duration::from_secs(seconds);
    // Warm up connections, caches and prepared statements.
    run(
        &channels,
        &token,
        &uploads,
        "warm-up",
        8,
        1,
        Duration::from_secs(1),
    )
    .await;
    let mut rows = vec![
        run(&channels, &token, &uploads, "SignPart", 1, 1, d).await,
        run(&channels, &token, &uploads, "SignPart", 32, 1, d).await,
        run(&channels, &token, &uploads, "SignParts", 1, 16, d).await,
        run(&channels, &token, &uploads, "SignParts", 32, 16, d).await,
        run(&channels, &token, &uploads, "SignParts", 32, 4, d).await,
        // 32 parts in flight as two batches of 16.
        run(&channels, &token, &uploads, "SignParts", 2, 16, d).await,
    ];
    // The target load, 10,000 parts per second, offered at a steady rate: one part
    // per call, then in batches.
    for batch in [1, 16, 8] {
        rows.push(
            run_open(
                &channels,
                &token,
                &uploads,
                "10k/s open",
                32,
                batch,
                10_000.0,
                d,
            )
            .await,
        );
    }
    let signed_rows = app.count("SELECT count(*) FROM upload_parts").await;
    println!();
    println!(
        "| scenario   | concurrency | parts/call | calls/s | parts/s | p50 ms | p99 ms | max ms |"
    );
    println!(
        "|------------|-------------|------------|---------|---------|--------|--------|--------|"
    );
    for r in &rows {
        let secs = r.elapsed.as_secs_f64();
        println!(
            "| {:<10} | {:>11} | {:>10} | {:>7.0} | {:>7.0} | {:>6.2} | {:>6.2} | {:>6.2} |",
            r.scenario,
            r.concurrency,
            r.batch,
            r.calls as f64 / secs,
            r.parts as f64 / secs,
            r.p50.as_secs_f64() * 1e3,
            r.p99.as_secs_f64() * 1e3,
            r.max.as_secs_f64() * 1e3,
        );
    }
    println!(
        "\n({seconds} s per scenario; {signed_rows} distinct (upload, part) rows recorded in upload_parts)"
    );
    println!(
        "presign alone, in process: {:.1} µs per part",
        presign_only.as_secs_f64() * 1e6
    );
}
