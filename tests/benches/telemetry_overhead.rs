//! What metrics and traces cost SignParts: the same closed-loop load (16 callers,
//! batches of 8 parts, database writes included) against a server with its
//! `/metrics` listener and OTLP trace export (to a collector stand-in that counts
//! what it is sent, every call carrying a `traceparent`) and against one with
//! neither. Both write their logs, as a server always does. Each arm is a process
//! of its own (the trace exporter is process-wide); the arms alternate, off/on
//! three times, in one run, and the table gives their ratio and the spans the
//! collector received per call (1: every RPC's span arrived, none dropped).
//!
//! Needs the local stack. Run:
//!     cargo bench -p upload-e2e --bench telemetry_overhead

use std::time::{Duration, Instant};

use md5::Digest;
use upload_config::{LogFormat, TelemetryConfig};
use upload_domain::SellerGroup;
use upload_e2e::{AppOptions, Collector, TestApp, pb};

const MIB: u64 = 1024 * 1024;
const PART: u64 = 5 * MIB;
const PARTS: u32 = 10_000;
const CALLERS: usize = 16;
const BATCH: u32 = 8;

/// One arm: signs for `seconds`; its parts per second, and the spans the
/// collector received per call.
async fn arm(telemetry: bool, seconds: u64) -> (f64, f64) {
    let collector = Collector::start_counting().await;
    let _telemetry = upload_telemetry::init(
        &TelemetryConfig {
            log_format: LogFormat::Text,
            otlp_endpoint: telemetry.then(|| collector.endpoint.clone()),
        },
        "upload-bench",
    )
    .expect("telemetry");
    let app = TestApp::spawn_with(AppOptions {
        worker: false,
        metrics: telemetry,
        env: vec![(
            "UPLOAD_LIMIT_PREMIUM_BYTES".into(),
            (u64::from(PARTS) * PART).to_string(),
        )],
        ..Default::default()
    })
    .await;
    let client = app.client("bench-telemetry", SellerGroup::Premium).await;
    let mut uploads = Vec::new();
    for i in 0..CALLERS {
        let u = client
            .create(
                &format!("t{i}.bin"),
                u64::from(PARTS) * PART,
                "application/octet-stream",
                Some(PART),
            )
            .await
            .expect("CreateUpload");
        uploads.push(u.upload_id);
    }
    let md5 = md5::Md5::digest(b"part").to_vec();
    let sign_for = |upload: String, until: Instant| {
        let (api, md5) = (client.api(), md5.clone());
        async move {
            let mut parts = 0usize;
            let mut next = 1u32;
            while Instant::now() < until {
                let mut req = tonic::Request::new(pb::SignPartsRequest {
                    upload_id: upload.clone(),
                    parts: (0..BATCH)
                        .map(|i| pb::PartToSign {
                            checksum_sha256: Vec::new(),
                            part_number: (next + i - 1) % PARTS + 1,
                            content_md5: md5.clone(),
                            content_length: PART,
                        })
                        .collect(),
                });
                next = next % PARTS + BATCH;
                if telemetry {
                    let traceparent = format!(
                        "00-{}-{}-01",
                        hex::encode(rand::random::<[u8; 16]>()),
                        hex::encode(rand::random::<[u8; 8]>())
                    );
                    req.metadata_mut()
                        .insert("traceparent", traceparent.parse().expect("header"));
                }
                let signed = api.clone().sign_parts(req).await.expect("SignParts");
                parts += signed.into_inner().parts.len();
            }
            parts
        }
    };
    // Warm-up: connections, prepared statements.
    let warm = Instant::now() + Duration::from_secs(1);
    futures::future::join_all(uploads.iter().map(|u| sign_for(u.clone(), warm))).await;
    let spans_before = collector.spans_received();
    let start = Instant::now();
    let until = start + Duration::from_secs(seconds);
    let parts: usize =
        futures::future::join_all(uploads.iter().map(|u| sign_for(u.clone(), until)))
            .await
            .into_iter()
            .sum();
    let rate = parts as f64 / start.elapsed().as_secs_f64();
    // The exporter sends what it holds every 500 ms.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let calls = parts as f64 / f64::from(BATCH);
    let spans = (collector.spans_received() - spans_before) as f64;
    (rate, spans / calls)
}

fn main() {
    let seconds: u64 = std::env::var("BENCH_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(8);
    if let Ok(which) = std::env::var("TELEMETRY_ARM") {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("runtime");
        let (rate, spans) = runtime.block_on(arm(which == "on", seconds));
        println!("parts_per_s {rate:.0}");
        println!("spans_per_call {spans:.3}");
        return;
    }
    let exe = std::env::current_exe().expect("this benchmark's path");
    let mut rates: Vec<(&str, f64)> = Vec::new();
    let mut spans_per_call = Vec::new();
    for which in ["off", "on", "off", "on", "off", "on"] {
        let out = std::process::Command::new(&exe)
            .env("TELEMETRY_ARM", which)
            .output()
            .expect("an arm runs");
        let text = String::from_utf8_lossy(&out.stdout);
        let rate: f64 = text
            .lines()
            .find_map(|l| l.strip_prefix("parts_per_s "))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or_else(|| {
                panic!(
                    "arm {which} printed no rate: {text}{}",
                    String::from_utf8_lossy(&out.stderr)
                )
            });
        rates.push((which, rate));
        if which == "on" {
            spans_per_call.extend(
                text.lines()
                    .find_map(|l| l.strip_prefix("spans_per_call "))
                    .and_then(|v| v.trim().parse::<f64>().ok()),
            );
        }
    }
    let mean = |arm: &str| {
        let of: Vec<f64> = rates
            .iter()
            .filter(|(w, _)| *w == arm)
            .map(|(_, r)| *r)
            .collect();
        of.iter().sum::<f64>() / of.len() as f64
    };
    let (off, on) = (mean("off"), mean("on"));
    println!("\n| arm | runs (parts/s) | mean parts/s |");
    println!("|-----|----------------|--------------|");
    for arm in ["off", "on"] {
        let runs: Vec<String> = rates
            .iter()
            .filter(|(w, _)| *w == arm)
            .map(|(_, r)| format!("{r:.0}"))
            .collect();
        let label = if arm == "on" {
            "metrics + traces"
        } else {
            "neither"
        };
        println!("| {label} | {} | {:.0} |", runs.join(", "), mean(arm));
    }
    println!(
        "\nwith / without: {:.3} ({:+.1} %); {CALLERS} callers, batches of {BATCH}, {seconds} s per run",
        on / off,
        (on / off - 1.0) * 100.0
    );
    let spans: Vec<String> = spans_per_call.iter().map(|s| format!("{s:.3}")).collect();
    println!("spans received per call, traced runs: {}", spans.join(", "));
}
