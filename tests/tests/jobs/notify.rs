//! The notify job: a webhook that fails is tried again later with the same
//! notification id; one that keeps failing is given up without touching the upload;
//! one that redirects is not followed, and no error on record shows its URL.

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

/// An app posting notifications to `url`, giving up after two attempts a second
/// apart.
async fn app_giving_up_on(url: String) -> TestApp {
    TestApp::spawn_with(AppOptions {
        worker_env: vec![
            ("UPLOAD_WEBHOOK_URL".into(), url),
            ("UPLOAD_WEBHOOK_SECRET".into(), SECRET.into()),
            ("UPLOAD_JOB_RETRY_BASE_SECS".into(), "1".into()),
            ("UPLOAD_JOB_MAX_ATTEMPTS".into(), "2".into()),
        ],
        ..Default::default()
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_webhook_that_redirects_is_not_followed_and_no_url_reaches_the_record() {
    // The receiver redirects to another that would take the call: it is not chased.
    let mut elsewhere = HookListener::start().await;
    let redirecting = HookListener::start_redirecting(&elsewhere.url).await;
    let with_token = format!("{}?token=hook-token-in-url", redirecting.url);
    let app = app_giving_up_on(with_token).await;
    let file = TestFile::from_bytes("eicar.txt", EICAR);
    app.upload_whole("seller-hook-moved", &file, "notes.txt", "text/plain")
        .await;
    app.wait_count(
        "SELECT count(*) FROM notifications WHERE delivery_attempts = 2 AND delivered_at IS NULL
           AND last_error LIKE '%307%redirect%'",
        1,
        Duration::from_secs(30),
    )
    .await;
    assert!(
        tokio::time::timeout(Duration::from_secs(2), elsewhere.requests.recv())
            .await
            .is_err(),
        "the redirect was followed"
    );
    // A receiver that does not answer at all: the error names no URL either.
    let closed = format!(
        "http://127.0.0.1:{}/hooks?token=hook-token-in-url",
        upload_e2e::free_port()
    );
    let app_closed = app_giving_up_on(closed).await;
    app_closed
        .upload_whole("seller-hook-gone", &file, "notes.txt", "text/plain")
        .await;
    app_closed
        .wait_count(
            "SELECT count(*) FROM notifications WHERE delivery_attempts = 2 AND delivered_at IS NULL",
            1,
            Duration::from_secs(30),
        )
        .await;
    for app in [&app, &app_closed] {
        let leaked = app
            .count(
                "SELECT count(*) FROM notifications WHERE last_error LIKE '%127.0.0.1%' \
                 OR last_error LIKE '%hook-token-in-url%' OR last_error LIKE '%/hooks%'",
            )
            .await;
        assert_eq!(leaked, 0, "a webhook URL in last_error");
        let failed_jobs = app
            .count(
                "SELECT count(*) FROM ops.failed_jobs WHERE queue = 'upload.notify' \
                 AND (error LIKE '%127.0.0.1%' OR error LIKE '%hook-token-in-url%')",
            )
            .await;
        assert_eq!(failed_jobs, 0, "a webhook URL in a job's error");
    }
    drop(redirecting);
}
