//! Pipeline jobs: retries with growing delays, a bounded number of attempts, then a
//! clear failed state the seller is told about; a scanner that is down is waited
//! for; and a job delivered twice changes nothing.

use std::time::Duration;

use upload_db::jobs::UploadJob;
use upload_domain::UploadId;
use upload_e2e::{AppOptions, Clamd, TestApp, TestFile, free_port, pb};

const MIB: u64 = 1024 * 1024;

fn closed_port() -> u16 {
    free_port()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unreachable_store_is_retried_with_delay_then_the_upload_fails_with_a_stable_code() {
    let app = TestApp::spawn_with(AppOptions {
        worker_env: vec![
            (
                "UPLOAD_S3_ENDPOINT".into(),
                format!("http://127.0.0.1:{}", closed_port()),
            ),
            ("UPLOAD_JOB_MAX_ATTEMPTS".into(), "3".into()),
            ("UPLOAD_JOB_RETRY_BASE_SECS".into(), "1".into()),
        ],
        ..Default::default()
    })
    .await;
    let file = TestFile::random(6 * MIB, 9);
    let (client, upload) = app.upload_parts("seller-retry", &file, None).await;
    client.complete(&upload.upload_id).await.unwrap();

    let failed = app
        .wait_settled(&client, &upload.upload_id, Duration::from_secs(60))
        .await;
    assert_eq!(failed.state, pb::UploadState::Failed as i32);
    let failure = failed.failure.expect("a failure is recorded");
    // The scan is the first job to read the file.
    assert_eq!(failure.code, "scan_failed");
    assert!(
        failure.message.contains("3 attempts"),
        "{}",
        failure.message
    );

    // The seller is told, once.
    let id = &upload.upload_id;
    assert_eq!(
        app.count(&format!(
            "SELECT count(*) FROM notifications WHERE upload_id = '{id}' AND kind = 'upload.failed'
               AND details->>'code' = 'scan_failed'"
        ))
        .await,
        1
    );
    // Three attempts, each its own job row, each scheduled later than the previous;
    // nothing after the scan was ever enqueued.
    assert_eq!(
        app.count(&format!(
            "SELECT count(*) FROM apalis.jobs WHERE idempotency_key LIKE '{id}#%'"
        ))
        .await,
        3
    );
    assert_eq!(
        app.count("SELECT count(*) FROM apalis.jobs WHERE job_type <> 'upload.scan'")
            .await,
        0
    );
    let spaced = app
        .count(&format!(
            "SELECT count(*) FROM apalis.jobs a JOIN apalis.jobs b
               ON b.idempotency_key = '{id}#' || (split_part(a.idempotency_key, '#', 2)::int + 1)
             WHERE a.idempotency_key LIKE '{id}#%' AND b.run_at >= a.run_at + interval '900 milliseconds'"
        ))
        .await;
    assert_eq!(spaced, 2, "each retry waits at least its delay");
    // Every failed attempt is visible to ops as Failed (the last ack may trail the upload's failure).
    app.wait_count(
        &format!("SELECT count(*) FROM apalis.jobs WHERE idempotency_key LIKE '{id}#%' AND status = 'Failed'"),
        3,
        Duration::from_secs(10),
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_scan_due_while_clamd_is_down_is_retried_and_succeeds_once_clamd_is_back() {
    let port = free_port();
    let app = TestApp::spawn_with(AppOptions {
        worker_env: vec![
            ("UPLOAD_CLAMD_ADDR".into(), format!("127.0.0.1:{port}")),
            ("UPLOAD_JOB_MAX_ATTEMPTS".into(), "6".into()),
            ("UPLOAD_JOB_RETRY_BASE_SECS".into(), "2".into()),
        ],
        ..Default::default()
    })
    .await;
    let file = TestFile::random(6 * MIB, 31);
    let (client, upload) = app.upload_parts("seller-clamd-down", &file, None).await;
    client.complete(&upload.upload_id).await.unwrap();
    let id = &upload.upload_id;

    // With nothing on the port the first attempt fails, and the second is
    // scheduled at least the base delay later: not a hot loop.
    app.wait_count(
        &format!("SELECT count(*) FROM apalis.jobs WHERE idempotency_key = '{id}#1' AND status = 'Failed'"),
        1,
        Duration::from_secs(30),
    )
    .await;
    assert_eq!(
        app.count(&format!(
            "SELECT count(*) FROM apalis.jobs a JOIN apalis.jobs b ON b.idempotency_key = '{id}#2'
             WHERE a.idempotency_key = '{id}#1' AND b.run_at >= a.run_at + interval '1900 milliseconds'"
        ))
        .await,
        1,
        "the retry waits its delay"
    );
    let scanning = client.get(id).await.unwrap().upload.unwrap();
    assert_eq!(scanning.state, pb::UploadState::Scanning as i32);

    // clamd comes back; a later attempt scans the file and the pipeline finishes.
    let _clamd = Clamd::start(port).await;
    let ready = app.wait_settled(&client, id, Duration::from_secs(60)).await;
    assert_eq!(ready.state, pb::UploadState::Ready as i32, "{ready:?}");
    assert_eq!(ready.scan.unwrap().verdict, pb::ScanVerdict::Clean as i32);
    assert_eq!(ready.metadata.unwrap().md5_hex, file.md5_hex);
    let failed_attempts = app
        .count(&format!(
            "SELECT count(*) FROM apalis.jobs WHERE idempotency_key LIKE '{id}#%'
               AND job_type = 'upload.scan' AND status = 'Failed' AND last_result::text LIKE '%clamd%'"
        ))
        .await;
    assert!(failed_attempts >= 1, "failed attempts name clamd");
    // Exactly one attempt succeeded (its ack may trail the upload's progress).
    app.wait_count(
        &format!(
            "SELECT count(*) FROM apalis.jobs WHERE idempotency_key LIKE '{id}#%'
               AND job_type = 'upload.scan' AND status = 'Done'"
        ),
        1,
        Duration::from_secs(10),
    )
    .await;
}

/// Everything the pipeline recorded about the test's uploads, timestamps left out.
async fn recorded(app: &TestApp) -> Vec<String> {
    let mut rows = Vec::new();
    for sql in [
        "SELECT state || coalesce(failure_code, '') AS v FROM uploads ORDER BY id",
        "SELECT concat_ws('|', md5_hex, sha256_hex, size_bytes, sniffed_content_type) AS v FROM upload_metadata ORDER BY upload_id",
        "SELECT concat_ws('|', verdict, signature, bytes_scanned, quarantine_key) AS v FROM upload_scans ORDER BY upload_id",
        "SELECT concat_ws('|', container, duration_ms, width, height, video_codec, audio_codec, frame_rate) AS v FROM upload_media ORDER BY upload_id",
        "SELECT concat_ws('|', name, kind, object_key, width, height, size_bytes) AS v FROM upload_previews ORDER BY upload_id, name",
        "SELECT concat_ws('|', stage, status, bytes_done, bytes_total, detail) AS v FROM upload_progress ORDER BY upload_id, stage",
        "SELECT concat_ws('|', kind, message) AS v FROM notifications ORDER BY id",
        "SELECT concat_ws('|', job_type, idempotency_key) AS v FROM apalis.jobs ORDER BY job_type, idempotency_key",
    ] {
        use diesel_async::RunQueryDsl;
        #[derive(diesel::QueryableByName)]
        struct V {
            #[diesel(sql_type = diesel::sql_types::Text)]
            v: String,
        }
        let mut conn = app.db().await;
        let found: Vec<V> = diesel::sql_query(sql).load(&mut conn).await.unwrap();
        rows.extend(found.into_iter().map(|r| r.v));
    }
    rows
}

/// The preview objects of an upload, with their ETags.
async fn preview_objects(app: &TestApp, id: &str) -> Vec<(String, String)> {
    let out = app
        .store
        .client()
        .list_objects_v2()
        .bucket(app.store.bucket_name(upload_storage::Bucket::Temp))
        .prefix(format!("previews/{id}/"))
        .send()
        .await
        .unwrap();
    out.contents()
        .iter()
        .map(|o| {
            (
                o.key().unwrap_or_default().to_owned(),
                o.e_tag().unwrap_or_default().to_owned(),
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_job_delivered_twice_at_once_gives_the_same_rows_and_objects() {
    // No worker: the test plays apalis, delivering every job twice concurrently
    // (as a redelivery after a lost heartbeat would), then a third time.
    let app = TestApp::spawn_with(AppOptions {
        worker: false,
        ..Default::default()
    })
    .await;
    let ctx = app.job_context().await;
    let video = TestFile::video(3, 320, 240);
    let (client, upload) = app
        .upload_whole("seller-twice", &video, "trailer.mp4", "video/mp4")
        .await;
    let job = UploadJob::first(upload.upload_id.parse::<UploadId>().unwrap());

    let (a, b) = tokio::join!(
        upload_worker::scan::run(&ctx, job),
        upload_worker::scan::run(&ctx, job)
    );
    a.unwrap();
    b.unwrap();
    let (a, b, c, d) = tokio::join!(
        upload_worker::metadata::run(&ctx, job),
        upload_worker::metadata::run(&ctx, job),
        upload_worker::preview::run(&ctx, job),
        upload_worker::preview::run(&ctx, job)
    );
    for r in [a, b, c, d] {
        r.unwrap();
    }
    let ready = client.get(&upload.upload_id).await.unwrap().upload.unwrap();
    assert_eq!(ready.state, pb::UploadState::Ready as i32, "{ready:?}");
    let rows = recorded(&app).await;
    let objects = preview_objects(&app, &upload.upload_id).await;
    assert_eq!(objects.len(), 2, "{objects:?}");
    // One scan verdict, one job per follow-up queue, no notification for a clean file.
    assert_eq!(app.count("SELECT count(*) FROM upload_scans").await, 1);
    assert_eq!(
        app.count("SELECT count(*) FROM apalis.jobs WHERE job_type = 'upload.metadata'")
            .await,
        1
    );
    assert_eq!(
        app.count("SELECT count(*) FROM apalis.jobs WHERE job_type = 'upload.preview'")
            .await,
        1
    );
    assert_eq!(app.count("SELECT count(*) FROM upload_previews").await, 2);

    // A late third delivery of each finds the work done and changes nothing.
    upload_worker::scan::run(&ctx, job).await.unwrap();
    upload_worker::metadata::run(&ctx, job).await.unwrap();
    upload_worker::preview::run(&ctx, job).await.unwrap();
    assert_eq!(recorded(&app).await, rows);
    assert_eq!(preview_objects(&app, &upload.upload_id).await, objects);

    // A preview job that died after storing its objects but before recording them
    // is delivered again: it remakes the same objects under the same keys.
    app.execute("DELETE FROM upload_previews").await;
    app.execute("UPDATE upload_progress SET status = 'running' WHERE stage = 'preview'")
        .await;
    app.execute("UPDATE uploads SET state = 'processing'").await;
    upload_worker::preview::run(&ctx, job).await.unwrap();
    assert_eq!(recorded(&app).await, rows);
    assert_eq!(preview_objects(&app, &upload.upload_id).await, objects);
}
