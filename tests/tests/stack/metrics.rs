//! The `/metrics` listeners of the server and the worker, scraped after real
//! uploads and a job that failed once: every counter and histogram moved by what
//! happened, no more. Calls to the store and clamd are counted by outcome, failures
//! included.

use std::time::Duration;

use upload_domain::{ScanVerdict, SellerGroup};
use upload_e2e::{
    AppOptions, EICAR, FaultRules, HookListener, LogCapture, MIB, StoreFaults, TestApp, TestFile,
    code, free_port, pb, scrape, stack_env,
};

/// The labels of a call to `dependency` named `call` that ended in `outcome`.
fn call<'a>(dependency: &'a str, call: &'a str, outcome: &'a str) -> [(&'a str, &'a str); 3] {
    [
        ("dependency", dependency),
        ("call", call),
        ("outcome", outcome),
    ]
}

const SECRET: &str = "webhook-secret-for-metrics-0123456789abcdef";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scrapes_count_the_rpcs_uploads_scans_and_job_runs_that_happened() {
    // The seller's webhook fails its first call: the notify job runs twice.
    let hook = HookListener::start_failing(1).await;
    let app = TestApp::spawn_with(AppOptions {
        worker_env: vec![
            ("UPLOAD_WEBHOOK_URL".into(), hook.url.clone()),
            ("UPLOAD_WEBHOOK_SECRET".into(), SECRET.into()),
        ],
        ..Default::default()
    })
    .await;
    let clean = TestFile::random(6 * MIB + 7);
    let infected = TestFile::from_bytes("eicar.txt", EICAR);
    let (client, a) = app
        .upload_whole(
            "seller-metrics",
            &clean,
            "a.bin",
            "application/octet-stream",
        )
        .await;
    let (_, b) = app
        .upload_whole("seller-metrics", &infected, "notes.txt", "text/plain")
        .await;
    for id in [&a.upload_id, &b.upload_id] {
        app.wait_settled(&client, id, Duration::from_secs(60)).await;
    }
    // One refused call.
    let refused = client
        .api()
        .create_upload(pb::CreateUploadRequest {
            file_name: String::new(),
            ..Default::default()
        })
        .await;
    assert_eq!(code(refused), tonic::Code::InvalidArgument);
    app.wait_count(
        "SELECT count(*) FROM notifications WHERE delivered_at IS NOT NULL",
        1,
        Duration::from_secs(30),
    )
    .await;

    let bytes = (clean.size + infected.size) as f64;
    let server = scrape(&app.server_metrics_url).await;
    let group = [("group", SellerGroup::Standard.as_str())];
    assert_eq!(
        server.value("upload_uploads_created_total", &group),
        2.0,
        "{}",
        server.text
    );
    assert_eq!(server.value("upload_uploads_completed_total", &group), 2.0);
    assert_eq!(server.value("upload_bytes_signed_total", &group), bytes);
    assert_eq!(server.value("upload_bytes_completed_total", &group), bytes);
    let create = |code: &'static str| [("method", "UploadService/CreateUpload"), ("code", code)];
    assert_eq!(
        server.value("upload_rpc_requests_total", &create("Ok")),
        2.0
    );
    assert_eq!(
        server.value("upload_rpc_requests_total", &create("InvalidArgument")),
        1.0
    );
    let method = [("method", "UploadService/CreateUpload")];
    assert_eq!(
        server.value("upload_rpc_duration_seconds_count", &method),
        3.0
    );
    assert!(server.value("upload_rpc_duration_seconds_sum", &method) > 0.0);
    assert_eq!(server.value("upload_watch_streams_open", &[]), 0.0);
    // The store's calls: one multipart upload begun and one assembled per file.
    for op in ["CreateMultipartUpload", "CompleteMultipartUpload"] {
        assert_eq!(
            server.value("upload_dependency_calls_total", &call("store", op, "ok")),
            2.0,
            "{op}"
        );
        assert_eq!(
            server.value(
                "upload_dependency_call_duration_seconds_count",
                &[("dependency", "store"), ("call", op)]
            ),
            2.0,
            "{op}"
        );
    }

    let worker = scrape(&app.worker_metrics_url).await;
    let verdict = |v: ScanVerdict| [("verdict", v.as_str())];
    assert_eq!(
        worker.value("upload_scan_verdicts_total", &verdict(ScanVerdict::Clean)),
        1.0,
        "{}",
        worker.text
    );
    assert_eq!(
        worker.value(
            "upload_scan_verdicts_total",
            &verdict(ScanVerdict::Infected)
        ),
        1.0
    );
    assert_eq!(worker.value("upload_scanned_bytes_total", &[]), bytes);
    assert_eq!(worker.value("upload_scan_duration_seconds_count", &[]), 2.0);
    // clamd: one INSTREAM per file, its VERSION asked before each scan.
    assert_eq!(
        worker.value(
            "upload_dependency_calls_total",
            &call("clamd", "INSTREAM", "ok")
        ),
        2.0
    );
    assert!(
        worker.value(
            "upload_dependency_calls_total",
            &call("clamd", "VERSION", "ok")
        ) >= 2.0
    );
    // Each scan reads its file twice (clamd, hashes); metadata and preview read too.
    assert!(
        worker.value(
            "upload_dependency_calls_total",
            &call("store", "GetObject", "ok")
        ) >= 4.0
    );
    let runs = |queue: &'static str, outcome: &'static str, attempt: &'static str| {
        [("queue", queue), ("outcome", outcome), ("attempt", attempt)]
    };
    assert_eq!(
        worker.value("upload_job_runs_total", &runs("upload.scan", "ok", "1")),
        2.0
    );
    assert_eq!(
        worker.value("upload_job_runs_total", &runs("upload.metadata", "ok", "1")),
        1.0
    );
    assert_eq!(
        worker.value(
            "upload_job_runs_total",
            &runs("upload.notify", "retry", "1")
        ),
        1.0
    );
    assert_eq!(
        worker.value("upload_job_runs_total", &runs("upload.notify", "ok", "2")),
        1.0
    );
    assert_eq!(
        worker.value(
            "upload_job_duration_seconds_count",
            &[("queue", "upload.notify")]
        ),
        2.0
    );
    assert_eq!(
        worker.value(
            "upload_job_duration_seconds_count",
            &[("queue", "upload.scan")]
        ),
        2.0
    );
    // Nothing waits now.
    let scan = [("queue", "upload.scan")];
    assert_eq!(worker.value("upload_queue_ready_jobs", &scan), 0.0);
    assert!(
        worker
            .text
            .contains("upload_queue_ready_jobs{queue=\"upload.scan\"} 0")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queue_depth_and_the_oldest_ready_job_are_read_from_the_job_table() {
    let app = TestApp::spawn_with(AppOptions {
        worker: false,
        ..Default::default()
    })
    .await;
    for seller in ["seller-depth-1", "seller-depth-2"] {
        let file = TestFile::random(MIB);
        app.upload_whole(seller, &file, "a.bin", "application/octet-stream")
            .await;
    }
    app.execute("UPDATE apalis.jobs SET run_at = now() - interval '90 seconds'")
        .await;
    let ctx = app.job_context().await;
    let text = (ctx.metrics.renderer(ctx.pool.clone()))().await;
    let scrape = upload_e2e::Scrape { text };
    let scan = [("queue", "upload.scan")];
    assert_eq!(
        scrape.value("upload_queue_ready_jobs", &scan),
        2.0,
        "{}",
        scrape.text
    );
    let oldest = scrape.value("upload_queue_oldest_ready_seconds", &scan);
    assert!((90.0..120.0).contains(&oldest), "{oldest}");
    assert_eq!(
        scrape.value("upload_queue_ready_jobs", &[("queue", "item.move")]),
        0.0
    );
    app.expect_unfinished_jobs(2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_store_and_clamd_calls_are_counted_by_how_they_failed() {
    let store = stack_env()["UPLOAD_S3_ENDPOINT"].clone();
    let faults = StoreFaults::start(&store, FaultRules::every_kind(0.0, Duration::ZERO)).await;
    // clamd is away for the worker, which tries each job once.
    let app = TestApp::spawn_with(AppOptions {
        env: vec![("UPLOAD_S3_ENDPOINT".into(), faults.url())],
        worker_env: vec![
            (
                "UPLOAD_CLAMD_ADDR".into(),
                format!("127.0.0.1:{}", free_port()),
            ),
            ("UPLOAD_JOB_MAX_ATTEMPTS".into(), "1".into()),
        ],
        ..Default::default()
    })
    .await;
    let file = TestFile::random(MIB + 3);
    let (client, up) = app
        .upload_whole("seller-calls", &file, "a.bin", "application/octet-stream")
        .await;
    let failed = app
        .wait_settled(&client, &up.upload_id, Duration::from_secs(60))
        .await;
    assert_eq!(failed.state, pb::UploadState::Failed as i32, "{failed:?}");
    // The scan asked clamd once; the signature watch may have asked too.
    let worker = scrape(&app.worker_metrics_url).await;
    assert!(
        worker.value(
            "upload_dependency_calls_total",
            &call("clamd", "VERSION", "no_answer")
        ) >= 1.0,
        "{}",
        worker.text
    );
    assert_eq!(
        worker.value(
            "upload_job_runs_total",
            &[
                ("queue", "upload.scan"),
                ("outcome", "gave_up"),
                ("attempt", "1")
            ]
        ),
        1.0
    );
    assert_eq!(
        worker.value(
            "upload_dependency_calls_total",
            &call("clamd", "VERSION", "ok")
        ),
        0.0
    );

    // The store away: CreateUpload's first call answers 503 (retried, then given
    // up on), counted once as failed.
    let before = scrape(&app.server_metrics_url).await;
    let begun = |scrape: &upload_e2e::Scrape, outcome| {
        scrape.value(
            "upload_dependency_calls_total",
            &call("store", "CreateMultipartUpload", outcome),
        )
    };
    assert_eq!(begun(&before, "ok"), 1.0, "{}", before.text);
    assert_eq!(begun(&before, "failed"), 0.0);
    faults.set_outage(true);
    let refused = client
        .api()
        .create_upload(pb::CreateUploadRequest {
            file_name: "b.bin".into(),
            size_bytes: MIB,
            content_type: "application/octet-stream".into(),
            ..Default::default()
        })
        .await;
    faults.set_outage(false);
    assert_eq!(code(refused), tonic::Code::Unavailable);
    let after = scrape(&app.server_metrics_url).await;
    assert_eq!(begun(&after, "failed"), 1.0, "{}", after.text);
    assert_eq!(begun(&after, "ok"), 1.0);
}

/// A path no server serves, different every time: `/x1f3….Service/M…`.
fn made_up_path(n: usize) -> String {
    let token = uuid::Uuid::now_v7().simple().to_string();
    match n % 3 {
        0 => format!("/pkg{token}.Service/Method{n}"),
        1 => format!("/upload.v1.UploadService/Nope{token}"),
        _ => format!("/{token}/{n}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calls_to_made_up_paths_without_a_token_grow_neither_the_metrics_nor_the_log() {
    let logs = LogCapture::install();
    let app = TestApp::spawn_with(AppOptions {
        worker: false,
        ..Default::default()
    })
    .await;
    let channel = app.channel().await;
    // Every label an outsider's call can make, once, before the scrape compared.
    for n in 0..30 {
        let code = TestApp::call_path(channel.clone(), &made_up_path(n)).await;
        assert_eq!(code, tonic::Code::Unauthenticated, "no token, refused");
    }
    let before = scrape(&app.server_metrics_url).await.text;
    let logged_before = logs.lines().len();
    let mut paths = Vec::with_capacity(1000);
    for n in 0..1000 {
        let path = made_up_path(n);
        let code = TestApp::call_path(channel.clone(), &path).await;
        assert_eq!(code, tonic::Code::Unauthenticated, "{path}");
        paths.push(path);
    }
    let after = scrape(&app.server_metrics_url).await;
    let grown = after.text.len().abs_diff(before.len());
    println!(
        "/metrics: {} bytes before, {} after 1,000 calls to made-up paths",
        before.len(),
        after.text.len()
    );
    assert!(grown < 4096, "/metrics grew by {grown} bytes");
    let unknown = [("method", "unknown"), ("code", "Unauthenticated")];
    assert_eq!(after.value("upload_rpc_requests_total", &unknown), 1030.0);
    for path in &paths {
        let token = path.trim_start_matches('/');
        assert!(!after.text.contains(token), "{path} is in /metrics");
    }
    // The log names none of them, and says at most a line about them all.
    let lines = logs.lines();
    let new = &lines[logged_before..];
    for line in new {
        assert!(
            !paths
                .iter()
                .any(|p| line.contains(p.trim_start_matches('/'))),
            "a path in the log: {line}"
        );
    }
    assert!(
        new.len() <= 2,
        "{} lines for 1,000 refused calls: {new:?}",
        new.len()
    );
}
