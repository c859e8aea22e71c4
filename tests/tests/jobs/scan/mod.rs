//! The scan job: infected files (EICAR, raw and zipped) are quarantined and the
//! seller told; bytes that are not their declared type, or a type off the
//! allow-list, are rejected with a readable reason; a store or clamd that is down is
//! retried with growing delays, then the upload fails with a stable code. Files
//! the scanner cannot inspect are in `unscannable`; files whose name, declaration
//! and bytes disagree, and programs, in `file_types`.

mod file_types;
mod part_check;
mod unscannable;

use crate::{SECRET, app_with_webhook};
use std::time::Duration;
use upload_domain::{FailureCode, NotificationKind, ScanVerdict};
use upload_e2e::{
    AppOptions, Clamd, EICAR, MIB, TestApp, TestFile, WAIT, free_port, pb, signature_valid, zipped,
};

async fn assert_quarantined(file: TestFile, name: &str, content_type: &str) {
    let (app, mut hook) = app_with_webhook().await;
    let client = app
        .client("seller-eicar", upload_domain::SellerGroup::Standard)
        .await;
    let upload = client
        .create(name, file.size, content_type, None)
        .await
        .expect("CreateUpload");
    let id = upload.upload_id.clone();
    let watcher = upload_e2e::follow(&client, &id).await;
    client
        .send_parts(&upload, &file.path, &[1], Default::default(), |_, _| {})
        .await
        .expect("sending the part");
    client.complete(&id).await.expect("CompleteUpload");

    let updates = tokio::time::timeout(Duration::from_secs(60), watcher)
        .await
        .expect("the stream ends at a final state")
        .expect("watcher");
    let last = updates
        .last()
        .and_then(|u| u.upload.clone())
        .expect("an update");
    assert_eq!(last.state, pb::UploadState::Quarantined as i32, "{last:?}");
    let failure = last.failure.expect("the reason is on the stream");
    assert_eq!(failure.code, FailureCode::Infected.as_str());
    let scan = last.scan.expect("the verdict is on the stream");
    assert_eq!(scan.verdict, pb::ScanVerdict::Infected as i32);
    assert!(scan.signature.contains("EICAR"), "{scan:?}");
    assert!(failure.message.contains(&scan.signature), "{failure:?}");

    // The object moved: in quarantine, gone from temp, byte for byte.
    let temp_key: String = {
        use diesel::prelude::*;
        use diesel_async::RunQueryDsl;
        use upload_db::schema::uploads::dsl;
        let mut conn = app.db().await;
        dsl::uploads
            .select(dsl::temp_key)
            .first(&mut conn)
            .await
            .unwrap()
    };
    let quarantine_key = format!("infected/seller-eicar/{id}");
    let quarantined = app
        .object_bytes(&app.config.store.quarantine_bucket, &quarantine_key)
        .await
        .expect("the file is in the quarantine bucket");
    assert_eq!(quarantined, std::fs::read(&file.path).unwrap());
    assert!(
        app.object_bytes(&app.config.store.temp_bucket, &temp_key)
            .await
            .is_none(),
        "the temp object is gone"
    );
    assert_eq!(
        app.count(&format!(
            "SELECT count(*) FROM upload_scans WHERE upload_id = '{id}' AND verdict = '{}'
               AND quarantine_key = '{quarantine_key}' AND signature LIKE '%EICAR%'",
            ScanVerdict::Infected
        ))
        .await,
        1
    );
    // Nothing else ran on the file: no media, no preview job, nothing made.
    assert_eq!(
        app.count("SELECT count(*) FROM apalis.jobs WHERE job_type IN ('upload.metadata', 'upload.preview')")
            .await,
        0
    );
    assert_eq!(app.count("SELECT count(*) FROM upload_previews").await, 0);
    assert_eq!(app.count("SELECT count(*) FROM upload_media").await, 0);

    // The seller is told: a notification row, and the webhook, signed.
    assert_eq!(
        app.count(&format!(
            "SELECT count(*) FROM notifications WHERE upload_id = '{id}' AND kind = '{}'
               AND seller_id = 'seller-eicar' AND details->>'signature' LIKE '%EICAR%'",
            NotificationKind::UploadQuarantined
        ))
        .await,
        1
    );
    let request = tokio::time::timeout(Duration::from_secs(30), hook.requests.recv())
        .await
        .expect("the webhook is called")
        .expect("a request");
    let body: serde_json::Value = serde_json::from_slice(&request.body).expect("json body");
    assert_eq!(body["kind"], NotificationKind::UploadQuarantined.as_str());
    assert_eq!(body["upload_id"], id.as_str());
    assert_eq!(
        request.header("x-upload-event"),
        Some(NotificationKind::UploadQuarantined.as_str())
    );
    let signature = request.header("x-upload-signature").expect("signed");
    assert!(
        signature_valid(signature, &request.body, SECRET),
        "{signature}"
    );
    assert!(!signature_valid(
        signature,
        &request.body,
        "another-secret-of-enough-length-0000"
    ));
    app.wait_count(
        &format!("SELECT count(*) FROM notifications WHERE upload_id = '{id}' AND delivered_at IS NOT NULL"),
        1,
        Duration::from_secs(10),
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_eicar_file_is_quarantined_and_the_seller_told() {
    assert_quarantined(
        TestFile::from_bytes("eicar.txt", EICAR),
        "readme.txt",
        "text/plain",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn eicar_inside_a_zip_is_quarantined_too() {
    assert_quarantined(
        TestFile::from_bytes("bundle.zip", &zipped("tools/setup.com", EICAR)),
        "bundle.zip",
        "application/zip",
    )
    .await;
}

/// Uploads `file` as `name` of type `declared` on an app of its own; returns the
/// app and the upload, which must have ended rejected.
async fn rejected_upload(file: &TestFile, name: &str, declared: &str) -> (TestApp, pb::Upload) {
    let app = TestApp::spawn().await;
    let (client, upload) = app.upload_whole("seller-liar", file, name, declared).await;
    let rejected = app.wait_settled(&client, &upload.upload_id, WAIT).await;
    assert_eq!(
        rejected.state,
        pb::UploadState::Rejected as i32,
        "{rejected:?}"
    );
    (app, rejected)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_zip_declared_as_a_video_is_rejected_with_a_readable_reason() {
    let archive = TestFile::from_bytes("movie.mp4", &zipped("movie.mp4", &[7u8; 100_000]));
    let (app, rejected) = rejected_upload(&archive, "movie.mp4", "video/mp4").await;
    let failure = rejected.failure.expect("a reason");
    assert_eq!(failure.code, FailureCode::TypeMismatch.as_str());
    assert!(
        failure.message.contains("video/mp4") && failure.message.contains("application/zip"),
        "{}",
        failure.message
    );
    // It was scanned (clean) first, and nothing ran on it after.
    assert_eq!(
        rejected.scan.map(|s| s.verdict),
        Some(pb::ScanVerdict::Clean as i32)
    );
    assert_eq!(
        app.count("SELECT count(*) FROM apalis.jobs WHERE job_type IN ('upload.metadata', 'upload.preview')")
            .await,
        0
    );
    assert_eq!(
        app.count(&format!(
            "SELECT count(*) FROM notifications WHERE kind = '{}' AND details->>'code' = '{}'",
            NotificationKind::UploadRejected,
            FailureCode::TypeMismatch
        ))
        .await,
        1
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bytes_of_a_type_off_the_allow_list_are_rejected_whatever_was_declared() {
    // An SQLite database, declared as a generic binary.
    let mut db = b"SQLite format 3\0".to_vec();
    db.resize(64 * 1024, 0);
    let file = TestFile::from_bytes("data.bin", &db);
    let (_app, rejected) = rejected_upload(&file, "data.bin", "application/octet-stream").await;
    let failure = rejected.failure.expect("a reason");
    assert_eq!(failure.code, FailureCode::TypeNotAllowed.as_str());
    assert!(
        failure.message.contains("not accepted"),
        "{}",
        failure.message
    );
    assert_eq!(
        rejected.metadata.map(|m| m.sniffed_content_type).as_deref(),
        Some("application/vnd.sqlite3")
    );
}

fn closed_port() -> u16 {
    free_port()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unreachable_store_is_retried_with_delay_then_the_upload_fails_with_a_stable_code() {
    let port = closed_port();
    let app = TestApp::spawn_with(AppOptions {
        worker_env: vec![
            (
                "UPLOAD_S3_ENDPOINT".into(),
                format!("http://127.0.0.1:{port}"),
            ),
            ("UPLOAD_JOB_MAX_ATTEMPTS".into(), "3".into()),
            ("UPLOAD_JOB_RETRY_BASE_SECS".into(), "1".into()),
        ],
        ..Default::default()
    })
    .await;
    let file = TestFile::random(6 * MIB);
    let (client, upload) = app.upload_parts("seller-retry", &file, None).await;
    client.complete(&upload.upload_id).await.unwrap();

    let failed = app
        .wait_settled(&client, &upload.upload_id, Duration::from_secs(60))
        .await;
    assert_eq!(failed.state, pb::UploadState::Failed as i32);
    let failure = failed.failure.expect("a failure is recorded");
    // The scan is the first job to read the file.
    assert_eq!(failure.code, FailureCode::ScanFailed.as_str());
    assert!(
        failure.message.contains("3 attempts"),
        "{}",
        failure.message
    );

    // What the seller reads (the failure, the notification a webhook carries) says
    // what happened, never where the store is or which key the worker holds.
    let id = &upload.upload_id;
    let details: Vec<String> = {
        #[derive(diesel::QueryableByName)]
        struct Text {
            #[diesel(sql_type = diesel::sql_types::Text)]
            t: String,
        }
        let mut conn = app.db().await;
        diesel_async::RunQueryDsl::load::<Text>(
            diesel::sql_query(format!(
                "SELECT details::text AS t FROM notifications WHERE upload_id = '{id}'"
            )),
            &mut conn,
        )
        .await
        .unwrap()
        .into_iter()
        .map(|r| r.t)
        .collect()
    };
    assert!(!details.is_empty());
    let key_id = &app.worker_env["UPLOAD_S3_ACCESS_KEY_ID"];
    for text in details.iter().chain([&failure.message]) {
        for secret in ["127.0.0.1", &port.to_string(), key_id, "http", "X-Amz"] {
            assert!(
                !text.contains(secret),
                "{secret:?} reaches the seller: {text}"
            );
        }
    }

    // The seller is told, once.
    assert_eq!(
        app.count(&format!(
            "SELECT count(*) FROM notifications WHERE upload_id = '{id}' AND kind = '{}'
               AND details->>'code' = '{}'",
            NotificationKind::UploadFailed,
            FailureCode::ScanFailed
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
    let file = TestFile::random(6 * MIB);
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
