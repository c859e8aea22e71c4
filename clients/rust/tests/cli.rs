//! The `upload` CLI against the real stack (PostgreSQL, Garage, clamd), with a TCP
//! proxy between the CLI and the store that counts bytes and breaks connections.

#![allow(clippy::unwrap_used)] // Test code states its expectations with unwrap.

use std::path::Path;
use std::process::{Output, Stdio};
use std::time::Duration;

use upload_client::{Event, SendOptions, UploadState};
use upload_domain::SellerGroup;
use upload_e2e::{AppOptions, Proxy, ProxyRules, TestApp, TestFile, pb, stack_env};

const MIB: u64 = 1024 * 1024;
/// Generous room for one PUT's request line and headers (a presigned URL is ~600 bytes).
const HEADER_ROOM: u64 = 4096;

fn cli() -> tokio::process::Command {
    tokio::process::Command::new(env!("CARGO_BIN_EXE_upload"))
}

/// An app whose clients reach the store through `proxy`.
async fn app_behind(proxy: &Proxy, worker: bool, extra: &[(&str, &str)]) -> TestApp {
    let mut env = vec![("UPLOAD_S3_PUBLIC_ENDPOINT".to_owned(), proxy.url())];
    env.extend(
        extra
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned())),
    );
    TestApp::spawn_with(AppOptions {
        worker,
        env,
        ..Default::default()
    })
    .await
}

fn store_url() -> String {
    stack_env()
        .get("UPLOAD_S3_ENDPOINT")
        .cloned()
        .expect("UPLOAD_S3_ENDPOINT in the stack env")
}

/// Runs the CLI to its end (killed after three minutes), its output kept in files so
/// that even a stuck run shows what it printed.
async fn run(app: &TestApp, token: &str, args: &[&str]) -> Output {
    let dir = tempfile::tempdir().unwrap();
    let (out_path, err_path) = (dir.path().join("stdout"), dir.path().join("stderr"));
    let mut child = cli()
        .arg("--endpoint")
        .arg(&app.endpoint)
        .args(app.cli_tls_args())
        .arg("--token")
        .arg(token)
        .arg("--plain")
        .args(args)
        .env(
            "RUST_LOG",
            std::env::var("CLI_LOG").unwrap_or_else(|_| "error".into()),
        )
        .stdout(std::fs::File::create(&out_path).unwrap())
        .stderr(std::fs::File::create(&err_path).unwrap())
        .spawn()
        .expect("running the upload CLI");
    let status = match tokio::time::timeout(Duration::from_secs(180), child.wait()).await {
        Ok(status) => status.unwrap(),
        Err(_) => {
            child.start_kill().unwrap();
            let _ = child.wait().await;
            panic!(
                "the CLI did not finish in 3 minutes; it printed:\n{}\n{}",
                std::fs::read_to_string(&out_path).unwrap_or_default(),
                std::fs::read_to_string(&err_path).unwrap_or_default()
            );
        }
    };
    Output {
        status,
        stdout: std::fs::read(&out_path).unwrap(),
        stderr: std::fs::read(&err_path).unwrap(),
    }
}

fn text(out: &Output) -> String {
    format!(
        "exit {:?}\n--- stdout\n{}\n--- stderr\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// Starts `put`, SIGKILLs it once the proxy has carried half the file, then runs
/// `resume`; checks that the resume sent only what the store lacked. Returns the
/// bytes that crossed the wire twice (request headers allowed for).
async fn kill_at_half_then_resume(concurrency: usize) -> u64 {
    let proxy = Proxy::start(&store_url(), ProxyRules::default()).await;
    let app = app_behind(&proxy, false, &[]).await;
    // CompleteUpload queues the scan, and no worker runs here.
    app.expect_unfinished_jobs(1);
    let seller = format!("seller-kill-{}", uuid::Uuid::now_v7().simple());
    let token = app.token(&seller, SellerGroup::Standard);
    let file = TestFile::random(300_000_000);
    let state_dir = tempfile::tempdir().unwrap();
    let state_arg = state_dir.path().to_str().unwrap().to_owned();
    let c = concurrency.to_string();
    let part_size = (16 * MIB).to_string();
    let mut child = cli()
        .args(["--endpoint", &app.endpoint])
        .args(app.cli_tls_args())
        .args(["--token", &token, "--plain", "put"])
        .arg(&file.path)
        .args(["--part-size", &part_size, "--concurrency", &c, "--no-watch"])
        .args(["--state-dir", &state_arg])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("starting the CLI");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(120);
    while proxy.bytes_up() < file.size / 2 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the upload did not reach half"
        );
        assert!(
            child.try_wait().unwrap().is_none(),
            "the CLI ended before half"
        );
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    child.start_kill().expect("SIGKILL");
    child.wait().await.unwrap();
    // The killed process's socket buffers still drain into the proxy for a moment:
    // those bytes were sent before the kill, so wait until the count stands still.
    let mut before = proxy.bytes_up();
    loop {
        tokio::time::sleep(Duration::from_millis(300)).await;
        let now = proxy.bytes_up();
        if now == before {
            break;
        }
        before = now;
    }

    // What the store lacks now, from the server's record.
    let state = UploadState::load(&UploadState::path_for(state_dir.path(), &file.path).unwrap())
        .unwrap()
        .expect("the state file survived the kill");
    let client = app.client(&seller, SellerGroup::Standard).await;
    let upload = client.get(&state.upload_id).await.unwrap().upload.unwrap();
    let missing = client.missing_parts(&state.upload_id).await.unwrap();
    assert!(
        !missing.is_empty() && (missing.len() as u32) < upload.part_count,
        "killed in the middle: {} of {} parts missing",
        missing.len(),
        upload.part_count
    );
    let missing_bytes: u64 = missing
        .iter()
        .map(|&n| upload_client::part_range(&upload, n).unwrap().1)
        .sum();
    let connections_before = proxy
        .stats
        .connections
        .load(std::sync::atomic::Ordering::SeqCst);

    let out = run(
        &app,
        &token,
        &[
            "resume",
            file.path.to_str().unwrap(),
            "--concurrency",
            &c,
            "--no-watch",
            "--state-dir",
            &state_arg,
        ],
    )
    .await;
    assert!(out.status.success(), "{}", text(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&format!("{} to send", missing.len())),
        "{}",
        text(&out)
    );
    let resumed = proxy.bytes_up() - before;
    let requests = proxy
        .stats
        .connections
        .load(std::sync::atomic::Ordering::SeqCst)
        - connections_before;

    let done = client.get(&state.upload_id).await.unwrap().upload.unwrap();
    assert_eq!(done.state, pb::UploadState::Uploaded as i32, "completed");
    let head = app
        .store
        .client()
        .head_object()
        .bucket(app.temp_bucket())
        .key(app.temp_key(&state.upload_id).await)
        .send()
        .await
        .expect("the completed object");
    assert_eq!(head.content_length(), Some(file.size as i64));
    assert!(
        UploadState::load(&UploadState::path_for(state_dir.path(), &file.path).unwrap())
            .unwrap()
            .is_none(),
        "the state file is removed once the upload completes"
    );
    let requests = requests.max(missing.len() as u64);
    // Every byte beyond the file's size crossed the wire twice (or was a header).
    let overhead = (file.size / (16 * MIB) + 1 + requests) * HEADER_ROOM;
    let sent_again = (before + resumed).saturating_sub(file.size + overhead);
    eprintln!(
        "before kill {before} B, resume {resumed} B, store lacked {missing_bytes} B, sent again ≤ {sent_again} B"
    );
    assert!(
        resumed <= missing_bytes + requests * HEADER_ROOM,
        "the resume sent only what the store lacked ({resumed} > {missing_bytes})"
    );
    sent_again
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cli_killed_at_half_resumes_and_sends_again_at_most_one_part() {
    let sent_again = kill_at_half_then_resume(1).await;
    assert!(
        sent_again <= 16 * MIB,
        "bytes sent again: {sent_again}, more than one 16 MiB part"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_four_parts_in_flight_a_resume_resends_only_the_interrupted_parts() {
    let sent_again = kill_at_half_then_resume(4).await;
    // Only parts in flight at the kill can have crossed twice: at most one per slot.
    assert!(sent_again <= 4 * 16 * MIB, "bytes sent again: {sent_again}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cut_connections_are_retried_and_the_upload_reaches_ready() {
    let proxy = Proxy::start(
        &store_url(),
        ProxyRules {
            cut_every: Some(3),
            cut_after_bytes: MIB,
            cut_at_most: 3,
            ..Default::default()
        },
    )
    .await;
    let app = app_behind(&proxy, true, &[]).await;
    let token = app.token("seller-flaky", SellerGroup::Standard);
    let file = TestFile::random(40 * MIB + 123);
    let state_dir = tempfile::tempdir().unwrap();
    let part_size = (5 * MIB).to_string();
    let out = run(
        &app,
        &token,
        &[
            "put",
            file.path.to_str().unwrap(),
            "--part-size",
            &part_size,
            "--concurrency",
            "4",
            "--state-dir",
            state_dir.path().to_str().unwrap(),
        ],
    )
    .await;
    assert!(out.status.success(), "{}", text(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let cuts = proxy.stats.cuts.load(std::sync::atomic::Ordering::SeqCst);
    let retries = stderr.matches("retrying part").count() as u64;
    eprintln!("{cuts} connections cut, {retries} retries logged");
    assert!(cuts >= 1, "the proxy cut connections");
    assert!(
        retries >= cuts,
        "{cuts} cuts, {retries} retries logged\n{}",
        text(&out)
    );
    assert!(stdout.contains("is ready"), "{}", text(&out));
    assert!(
        stdout.contains(&file.md5_hex),
        "the server's MD5 is the file's\n{}",
        text(&out)
    );
    assert!(stdout.contains(&file.sha256_hex), "{}", text(&out));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_url_is_signed_again_without_an_error() {
    // URLs live 4 s, which a busy machine cannot eat between signing a URL again
    // and its PUT; the proxy holds the first two connections for 6 s, so the store
    // sees those PUTs after their URLs expired and refuses them.
    let proxy = Proxy::start(
        &store_url(),
        ProxyRules {
            delay_first: 2,
            delay: Duration::from_secs(6),
            ..Default::default()
        },
    )
    .await;
    let app = app_behind(&proxy, false, &[("UPLOAD_SIGN_EXPIRY_SECS", "4")]).await;
    // CompleteUpload queues the scan, and no worker runs here.
    app.expect_unfinished_jobs(1);
    let client = app.client("seller-slow", SellerGroup::Standard).await;
    let file = TestFile::random(20 * MIB);
    let upload = client
        .start_file(&file.path, "application/octet-stream", Some(5 * MIB))
        .await
        .unwrap();
    let events = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let seen = std::sync::Arc::clone(&events);
    let all: Vec<u32> = (1..=upload.part_count).collect();
    let stats = client
        .send_parts_observed(
            &upload,
            &file.path,
            &all,
            SendOptions {
                concurrency: 2,
                ..SendOptions::default()
            },
            move |e: &Event| seen.lock().unwrap().push(e.clone()),
        )
        .await
        .expect("the upload goes on through expired URLs");
    let events = events.lock().unwrap().clone();
    let expired: Vec<u32> = events
        .iter()
        .filter_map(|e| match e {
            Event::Resigned { part, reason } if *reason == "expired" => Some(*part),
            _ => None,
        })
        .collect();
    assert!(
        expired.len() >= 2,
        "the two held PUTs were refused and signed again: {events:?}"
    );
    assert_eq!(
        stats.retries, 0,
        "an expired URL is not a failure: {events:?}"
    );
    assert_eq!(stats.parts_sent, 4);
    let done = client.complete(&upload.upload_id).await.expect("complete");
    assert_eq!(done.state, pb::UploadState::Uploaded as i32);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn item_status_versions_and_download_from_the_cli() {
    let app = TestApp::spawn().await;
    let seller = format!("seller-cli-{}", uuid::Uuid::now_v7().simple());
    let token = app.token(&seller, SellerGroup::Standard);
    let file = TestFile::random(6 * MIB + 7);
    let (client, upload) = app
        .ready_upload(&seller, &file, "manual.bin", "application/octet-stream")
        .await;
    let item = upload_e2e::submit_new_item(
        &client,
        "cli-item-1",
        pb::ItemKind::DigitalFile,
        "A manual",
        &upload.upload_id,
    )
    .await
    .item
    .unwrap();
    let stored = upload_e2e::wait_item(&client, &item.item_id, Duration::from_secs(60)).await;
    assert_eq!(stored.state, pb::SubmissionState::Stored as i32);

    let out = run(&app, &token, &["item", &item.item_id]).await;
    assert!(out.status.success(), "{}", text(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("is stored") && stdout.contains(&file.md5_hex),
        "{}",
        text(&out)
    );

    let out = run(&app, &token, &["versions", &item.item_id]).await;
    assert!(out.status.success(), "{}", text(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("manual.bin") && stdout.contains(&file.md5_hex),
        "{}",
        text(&out)
    );

    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("copy.pdf");
    let out = run(
        &app,
        &token,
        &[
            "download",
            &item.item_id,
            "--version",
            "1",
            "-o",
            target.to_str().unwrap(),
        ],
    )
    .await;
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(
        std::fs::read(&target).unwrap(),
        std::fs::read(&file.path).unwrap()
    );

    // Someone else's item: a sentence and a non-zero exit, nothing written.
    let other = app.token("seller-cli-stranger", SellerGroup::Standard);
    let stray = dir.path().join("stray.pdf");
    let out = run(
        &app,
        &other,
        &["download", &item.item_id, "-o", stray.to_str().unwrap()],
    )
    .await;
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.starts_with("upload failed: ") && stderr.contains("not found"),
        "{}",
        text(&out)
    );
    assert!(!Path::new(&stray).exists());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn errors_read_as_sentences_with_a_non_zero_exit() {
    let app = TestApp::spawn_with(AppOptions {
        worker: false,
        ..Default::default()
    })
    .await;
    let out = run(
        &app,
        "not-a-token",
        &["status", &uuid::Uuid::now_v7().to_string()],
    )
    .await;
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("did not accept your token"),
        "{}",
        text(&out)
    );

    let token = app.token("seller-cli-errors", SellerGroup::Standard);
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("nothing-here.bin");
    let out = run(&app, &token, &["put", missing.to_str().unwrap()]).await;
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("cannot read the file"),
        "{}",
        text(&out)
    );

    // A file over the standard limit: refused before anything is created.
    let big = dir.path().join("big.bin");
    std::fs::File::create(&big)
        .unwrap()
        .set_len(600_000_000)
        .unwrap();
    let out = run(
        &app,
        &token,
        &[
            "put",
            big.to_str().unwrap(),
            "--state-dir",
            dir.path().to_str().unwrap(),
        ],
    )
    .await;
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("too large"),
        "{}",
        text(&out)
    );
    assert_eq!(app.count("SELECT count(*) FROM uploads").await, 0);
}
