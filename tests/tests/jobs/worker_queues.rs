//! Workers that run a subset of the queues (`UPLOAD_WORKER_QUEUES`), each process
//! with one listener for every queue's job notifications: a scan-only worker scans
//! and leaves processing to a worker that runs metadata and preview.

use std::time::Duration;

use upload_e2e::{AppOptions, MIB, TestApp, TestFile, pb};

/// Listening connections on `app`'s database waiting for job notifications.
async fn job_listeners(app: &TestApp) -> i64 {
    app.count(
        "SELECT count(*) FROM pg_stat_activity
          WHERE datname = current_database() AND query LIKE 'LISTEN \"apalis::job::insert\"%'",
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_scan_only_worker_scans_and_a_processing_worker_finishes() {
    let app = TestApp::spawn_with(AppOptions {
        worker: false,
        ..Default::default()
    })
    .await;
    let scanner = TestApp::spawn_worker_for(
        &app,
        AppOptions {
            worker_env: vec![("UPLOAD_WORKER_QUEUES".into(), "scan:2".into())],
            ..Default::default()
        },
    )
    .await;
    let file = TestFile::random(MIB + 5);
    let (client, up) = app
        .upload_whole("seller-queues", &file, "a.bin", "application/octet-stream")
        .await;
    // Scanned, and processing waits: nobody runs metadata or preview.
    app.wait_count(
        &format!(
            "SELECT count(*) FROM uploads WHERE id = '{}' AND state = 'processing'",
            up.upload_id
        ),
        1,
        Duration::from_secs(60),
    )
    .await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let waiting = |queue: &'static str| {
        format!(
            "SELECT count(*) FROM apalis.jobs WHERE job_type = '{queue}' AND status = 'Pending'"
        )
    };
    assert_eq!(app.count(&waiting("upload.metadata")).await, 1);
    assert_eq!(app.count(&waiting("upload.preview")).await, 1);
    assert_eq!(
        job_listeners(&app).await,
        1,
        "one listener for the scan worker"
    );

    let processor = TestApp::spawn_worker_for(
        &app,
        AppOptions {
            worker_env: vec![("UPLOAD_WORKER_QUEUES".into(), "metadata,preview:1".into())],
            ..Default::default()
        },
    )
    .await;
    let ready = app
        .wait_settled(&client, &up.upload_id, Duration::from_secs(60))
        .await;
    assert_eq!(ready.state, pb::UploadState::Ready as i32, "{ready:?}");
    assert_eq!(ready.metadata.expect("hashes").md5_hex, file.md5_hex);
    // Two processes, three queues: two listening connections.
    assert_eq!(job_listeners(&app).await, 2);
    drop((scanner, processor));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_naming_an_unknown_queue_does_not_start() {
    let env: std::collections::HashMap<String, String> = upload_e2e::stack_env()
        .into_iter()
        .chain([("UPLOAD_WORKER_QUEUES".to_owned(), "scan,virus".to_owned())])
        .collect();
    let refused = upload_config::WorkerConfig::from_source(&env)
        .expect_err("an unknown queue")
        .to_string();
    assert!(
        refused.contains("UPLOAD_WORKER_QUEUES") && refused.contains("\"virus\" is not a queue"),
        "{refused}"
    );
}
