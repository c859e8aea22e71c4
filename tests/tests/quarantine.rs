//! Infected files: the EICAR test file, raw and inside a zip, is found by the real
//! clamd, moved to the quarantine bucket and out of temp, and the seller is told
//! three ways: a notification row, the WatchProgress stream and a signed webhook.

use std::time::Duration;

use upload_e2e::{AppOptions, EICAR, HookListener, TestApp, TestFile, pb, signature_valid, zipped};

const SECRET: &str = "webhook-secret-for-tests-0123456789abcdef";

async fn app_with_webhook() -> (TestApp, HookListener) {
    let hook = HookListener::start().await;
    let app = TestApp::spawn_with(AppOptions {
        worker_env: vec![
            ("UPLOAD_WEBHOOK_URL".into(), hook.url.clone()),
            ("UPLOAD_WEBHOOK_SECRET".into(), SECRET.into()),
        ],
        ..Default::default()
    })
    .await;
    (app, hook)
}

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
    assert_eq!(failure.code, "infected");
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
            "SELECT count(*) FROM upload_scans WHERE upload_id = '{id}' AND verdict = 'infected'
               AND quarantine_key = '{quarantine_key}' AND signature LIKE '%EICAR%'"
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
            "SELECT count(*) FROM notifications WHERE upload_id = '{id}' AND kind = 'upload.quarantined'
               AND seller_id = 'seller-eicar' AND details->>'signature' LIKE '%EICAR%'"
        ))
        .await,
        1
    );
    let request = tokio::time::timeout(Duration::from_secs(30), hook.requests.recv())
        .await
        .expect("the webhook is called")
        .expect("a request");
    let body: serde_json::Value = serde_json::from_slice(&request.body).expect("json body");
    assert_eq!(body["kind"], "upload.quarantined");
    assert_eq!(body["upload_id"], id.as_str());
    assert_eq!(request.header("x-upload-event"), Some("upload.quarantined"));
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_webhook_that_fails_is_retried_later_with_the_same_notification_id() {
    let mut hook = HookListener::start_failing(1).await;
    let app = TestApp::spawn_with(AppOptions {
        worker_env: vec![
            ("UPLOAD_WEBHOOK_URL".into(), hook.url.clone()),
            ("UPLOAD_WEBHOOK_SECRET".into(), SECRET.into()),
            ("UPLOAD_JOB_RETRY_BASE_SECS".into(), "1".into()),
        ],
        ..Default::default()
    })
    .await;
    let file = TestFile::from_bytes("eicar.txt", EICAR);
    let (client, upload) = app
        .upload_whole("seller-hook-retry", &file, "notes.txt", "text/plain")
        .await;
    let settled = app
        .wait_settled(&client, &upload.upload_id, Duration::from_secs(60))
        .await;
    assert_eq!(settled.state, pb::UploadState::Quarantined as i32);

    let mut calls = Vec::new();
    for _ in 0..2 {
        calls.push(
            tokio::time::timeout(Duration::from_secs(30), hook.requests.recv())
                .await
                .expect("a webhook call")
                .expect("a request"),
        );
    }
    let (first, second) = (&calls[0], &calls[1]);
    let id_of =
        |r: &upload_e2e::HookRequest| r.header("x-upload-notification-id").map(str::to_owned);
    assert!(id_of(first).is_some());
    assert_eq!(
        id_of(first),
        id_of(second),
        "a retry is the same notification"
    );
    let signature = second.header("x-upload-signature").expect("signed");
    assert!(signature_valid(signature, &second.body, SECRET));
    app.wait_count(
        "SELECT count(*) FROM notifications WHERE delivered_at IS NOT NULL AND delivery_attempts = 2",
        1,
        Duration::from_secs(10),
    )
    .await;
    // The retry was its own job row, scheduled at least the base delay later.
    assert_eq!(
        app.count(
            "SELECT count(*) FROM apalis.jobs a JOIN apalis.jobs b
               ON a.job_type = 'upload.notify' AND b.job_type = 'upload.notify'
              AND split_part(a.idempotency_key, '#', 1) = split_part(b.idempotency_key, '#', 1)
              AND split_part(a.idempotency_key, '#', 2) = '1' AND split_part(b.idempotency_key, '#', 2) = '2'
             WHERE b.run_at >= a.run_at + interval '900 milliseconds'"
        )
        .await,
        1
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_webhook_that_keeps_failing_is_given_up_without_touching_the_upload() {
    let hook = HookListener::start_failing(usize::MAX).await;
    let app = TestApp::spawn_with(AppOptions {
        worker_env: vec![
            ("UPLOAD_WEBHOOK_URL".into(), hook.url.clone()),
            ("UPLOAD_WEBHOOK_SECRET".into(), SECRET.into()),
            ("UPLOAD_JOB_RETRY_BASE_SECS".into(), "1".into()),
            ("UPLOAD_JOB_MAX_ATTEMPTS".into(), "2".into()),
        ],
        ..Default::default()
    })
    .await;
    let file = TestFile::from_bytes("eicar.txt", EICAR);
    let (client, upload) = app
        .upload_whole("seller-hook-down", &file, "notes.txt", "text/plain")
        .await;
    app.wait_count(
        "SELECT count(*) FROM notifications WHERE delivery_attempts = 2 AND delivered_at IS NULL
           AND last_error LIKE '%500%'",
        1,
        Duration::from_secs(30),
    )
    .await;
    // No third attempt is ever scheduled, and the upload stays quarantined.
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(
        app.count("SELECT count(*) FROM apalis.jobs WHERE job_type = 'upload.notify'")
            .await,
        2
    );
    let upload = client.get(&upload.upload_id).await.unwrap().upload.unwrap();
    assert_eq!(upload.state, pb::UploadState::Quarantined as i32);
    drop(hook);
}
