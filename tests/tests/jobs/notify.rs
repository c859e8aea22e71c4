//! The notify job: a webhook that fails is tried again later with the same
//! notification id; one that keeps failing is given up without touching the upload.

use crate::SECRET;
use std::time::Duration;
use upload_e2e::{AppOptions, EICAR, HookListener, TestApp, TestFile, pb, signature_valid};

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
