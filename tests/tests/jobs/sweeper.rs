//! The sweeper: nothing stays stuck after a crash or an abandoned upload or
//! submission.

use crate::{assert_moved_once, ready_then_no_worker, submit};
use std::time::Duration;
use upload_domain::FailureCode;
use upload_e2e::{AppOptions, MIB, TestApp, TestFile, WAIT, pb, wait_item};

fn fast_sweeper() -> AppOptions {
    AppOptions {
        worker_env: vec![
            ("UPLOAD_SWEEP_INTERVAL_SECS".into(), "1".into()),
            ("UPLOAD_STUCK_AFTER_SECS".into(), "1".into()),
        ],
        ..Default::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_abandoned_upload_expires_and_its_parts_are_freed() {
    let app = TestApp::spawn_with(fast_sweeper()).await;
    let file = TestFile::random(10 * MIB);
    let (client, upload) = app.upload_parts("seller-gone", &file, Some(&[1])).await;
    app.execute("UPDATE uploads SET expires_at = now() - interval '1 second'")
        .await;

    let expired = app
        .wait_settled(&client, &upload.upload_id, Duration::from_secs(20))
        .await;
    assert_eq!(expired.state, pb::UploadState::Expired as i32);
    assert_eq!(expired.failure.unwrap().code, FailureCode::Expired.as_str());
    assert!(
        app.first_upload_parts().await.is_err(),
        "the multipart upload is aborted"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upload_assembled_but_never_recorded_is_completed_and_processed() {
    let app = TestApp::spawn_with(fast_sweeper()).await;
    let file = TestFile::random(10 * MIB + 7);
    let (client, upload) = app
        .upload_parts("seller-crashed", &file, Some(&[1, 2, 3]))
        .await;
    // The store completed; the server died before recording it; the client never came back.
    app.complete_in_store_only().await;
    app.execute("UPDATE uploads SET expires_at = now() - interval '1 second'")
        .await;

    let ready = app
        .wait_settled(&client, &upload.upload_id, Duration::from_secs(30))
        .await;
    assert_eq!(ready.state, pb::UploadState::Ready as i32);
    assert_eq!(ready.metadata.unwrap().md5_hex, file.md5_hex);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_scan_whose_job_vanished_is_enqueued_again() {
    let app = TestApp::spawn_with(AppOptions {
        worker: false,
        ..fast_sweeper()
    })
    .await;
    let file = TestFile::random(6 * MIB);
    let (client, upload) = app.upload_parts("seller-stalled", &file, None).await;
    client.complete(&upload.upload_id).await.unwrap();
    // The job row is lost (say, deleted by hand) while the upload says scanning.
    app.execute("DELETE FROM apalis.jobs").await;
    app.execute("UPDATE uploads SET state = 'scanning', updated_at = now() - interval '1 hour'")
        .await;

    // A worker starting now finds it and finishes it.
    let worker = TestApp::spawn_worker_for(&app, fast_sweeper()).await;
    let ready = app
        .wait_settled(&client, &upload.upload_id, Duration::from_secs(30))
        .await;
    assert_eq!(ready.state, pb::UploadState::Ready as i32);
    assert_eq!(ready.metadata.unwrap().sha256_hex, file.sha256_hex);
    drop(worker);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_submission_whose_job_was_lost_is_picked_up_by_the_sweeper() {
    let file = TestFile::random(MIB);
    let (app, client, ups) = ready_then_no_worker("seller-lost", &[&file]).await;
    let sub = submit(&client, "lost", &ups[0]).await;
    // The persist job row vanished (a crash before the worker claimed it, a purge).
    app.execute("DELETE FROM apalis.jobs WHERE job_type = 'item.persist'")
        .await;
    let ctx = app.job_context().await;
    let report = upload_worker::sweep::sweep_once(&ctx, Duration::ZERO)
        .await
        .unwrap();
    assert_eq!(report.requeued_submissions, 1, "{report:?}");
    assert_eq!(
        app.count(&format!(
            "SELECT count(*) FROM apalis.jobs WHERE job_type = 'item.persist' AND idempotency_key = '{sub}#1'"
        ))
        .await,
        1,
        "attempt 1 again: no attempt row had survived"
    );
    // A worker now finishes it.
    let _worker = TestApp::spawn_worker_for(&app, AppOptions::default()).await;
    let mut conn = app.db().await;
    let item_id = upload_db::submissions::find(&mut conn, sub)
        .await
        .unwrap()
        .unwrap()
        .item_id;
    drop(conn);
    let item = wait_item(&client, &item_id.to_string(), WAIT).await;
    assert_eq!(item.state, pb::SubmissionState::Stored as i32, "{item:?}");
    assert_moved_once(&app, &ups[0], &file).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_ready_upload_never_submitted_expires_before_the_store_drops_its_bytes() {
    let app = TestApp::spawn_with(fast_sweeper()).await;
    let image = TestFile::image(320, 240);
    let (client, old) = app
        .ready_upload("seller-idle", &image, "cover.png", "image/png")
        .await;
    assert!(!old.previews.is_empty(), "{old:?}");
    let (_, fresh) = app
        .ready_upload(
            "seller-idle",
            &TestFile::random(MIB),
            "pack.bin",
            "application/octet-stream",
        )
        .await;
    // Ready for a day longer than UPLOAD_READY_TTL_SECS (5 days by default), and
    // so two days short of the temp bucket's 7-day lifecycle.
    app.execute(&format!(
        "UPDATE uploads SET updated_at = now() - interval '6 days' WHERE id = '{}'",
        old.upload_id
    ))
    .await;

    poll_expired(&client, &old.upload_id).await;
    let expired = client.get(&old.upload_id).await.unwrap().upload.unwrap();
    assert_eq!(
        expired.state,
        pb::UploadState::Expired as i32,
        "{expired:?}"
    );
    assert_eq!(expired.failure.unwrap().code, FailureCode::Expired.as_str());
    // Its bytes and previews go right after (the sweeper records the expiry first,
    // then deletes); the fresh upload is untouched.
    let temp = app.temp_bucket().to_owned();
    let keys = upload_e2e::poll_until(
        "the expired upload's objects to be deleted",
        Duration::from_secs(10),
        || async {
            let keys = app.keys(&temp, "").await;
            (!keys.iter().any(|k| k.contains(&old.upload_id)), keys)
        },
    )
    .await;
    assert!(
        keys.iter().any(|k| k.contains(&fresh.upload_id)),
        "{keys:?}"
    );
    let still = client.get(&fresh.upload_id).await.unwrap().upload.unwrap();
    assert_eq!(still.state, pb::UploadState::Ready as i32);
    // A late submission is refused with a reason instead of failing on lost bytes.
    let late = client
        .items()
        .submit_item(upload_e2e::submission(
            "late",
            "",
            pb::ItemKind::DigitalFile,
            "Cover",
            &[(&old.upload_id, "")],
        ))
        .await
        .expect_err("an expired upload cannot be submitted");
    assert_eq!(late.code(), tonic::Code::FailedPrecondition, "{late:?}");
    assert!(late.message().contains("cannot be submitted"), "{late:?}");
}

/// Waits until the upload's state is expired (a ready upload counts as settled).
async fn poll_expired(client: &upload_client::UploadClient, id: &str) {
    upload_e2e::poll_until("the upload to expire", Duration::from_secs(20), || async {
        let upload = client.get(id).await.unwrap().upload.unwrap();
        (
            upload.state == pb::UploadState::Expired as i32,
            upload.state,
        )
    })
    .await;
}
