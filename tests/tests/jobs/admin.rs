//! The admin tool (`upload-admin`) on the real stack: a submission failed by a
//! store outage retried once the store is back, an upload whose scan failed
//! retried from the scan, a stuck upload requeued, a webhook redelivered under the
//! same notification id; each action in the history with the operator's name, and
//! a refusal changing nothing.

use std::time::Duration;

use upload_e2e::{
    AppOptions, EICAR, FaultRules, HookListener, MIB, StoreFaults, TestApp, TestFile, free_port,
    pb, stack_env, submit_new_item, wait_item,
};
use upload_server::admin::Outcome;

use crate::SECRET;

/// The history lines of upload `id` as (from, to, cause, actor).
async fn upload_history(app: &TestApp, id: &str) -> Vec<(String, String, String, String)> {
    history(app, "upload_events", "upload_id", id).await
}

async fn history(
    app: &TestApp,
    table: &str,
    key: &str,
    id: &str,
) -> Vec<(String, String, String, String)> {
    use diesel::sql_types::Text;
    #[derive(diesel::QueryableByName)]
    struct Line {
        #[diesel(sql_type = Text)]
        from_state: String,
        #[diesel(sql_type = Text)]
        to_state: String,
        #[diesel(sql_type = Text)]
        cause: String,
        #[diesel(sql_type = Text)]
        actor: String,
    }
    let mut conn = app.db().await;
    let lines: Vec<Line> = diesel_async::RunQueryDsl::load(
        diesel::sql_query(format!(
            "SELECT coalesce(from_state, '') AS from_state, to_state, cause, actor \
             FROM {table} WHERE {key} = '{id}' ORDER BY id"
        )),
        &mut conn,
    )
    .await
    .expect("history");
    lines
        .into_iter()
        .map(|l| (l.from_state, l.to_state, l.cause, l.actor))
        .collect()
}

fn line(from: &str, to: &str, cause: &str, actor: &str) -> (String, String, String, String) {
    (from.into(), to.into(), cause.into(), actor.into())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_submission_failed_by_a_store_outage_is_retried_once_the_store_is_back() {
    let store = stack_env()["UPLOAD_S3_ENDPOINT"].clone();
    let faults = StoreFaults::start(&store, FaultRules::every_kind(0.0, Duration::ZERO)).await;
    let app = TestApp::spawn_with(AppOptions {
        worker_env: [
            ("UPLOAD_S3_ENDPOINT", faults.url()),
            ("UPLOAD_JOB_MAX_ATTEMPTS", "2".into()),
            ("UPLOAD_JOB_RETRY_BASE_SECS", "1".into()),
            ("UPLOAD_JOB_RETRY_MAX_SECS", "1".into()),
        ]
        .map(|(k, v)| (k.to_owned(), v))
        .into(),
        ..Default::default()
    })
    .await;
    let file = TestFile::random(MIB + 3);
    let (client, up) = app
        .ready_upload(
            "seller-outage",
            &file,
            "data.bin",
            "application/octet-stream",
        )
        .await;
    // The store goes away: the item's fields are saved, its file cannot be moved.
    faults.set_outage(true);
    let res = submit_new_item(
        &client,
        "outage",
        pb::ItemKind::DigitalFile,
        "Outage",
        &up.upload_id,
    )
    .await;
    let item_id = res.item.expect("item").item_id;
    let failed = wait_item(&client, &item_id, Duration::from_secs(120)).await;
    assert_eq!(
        failed.state,
        pb::SubmissionState::Failed as i32,
        "{failed:?}"
    );
    let submission = res.submission_id;
    // Ops see both failed attempts of the move, with the store's error (the
    // second once the worker has settled its row).
    app.wait_count(
        &format!(
            "SELECT count(*) FROM ops.failed_jobs WHERE queue = 'item.move' AND subject = '{submission}' \
             AND attempt IN (1, 2) AND error LIKE '%store is unavailable%'"
        ),
        2,
        Duration::from_secs(10),
    )
    .await;
    // Retrying while nothing failed is refused and changes nothing.
    let refused = app.admin("ana", &["retry", "upload", &up.upload_id]).await;
    assert!(
        matches!(&refused, Outcome::Refused(why) if why.contains("only a failed upload")),
        "{refused:?}"
    );

    faults.set_outage(false);
    let done = app
        .admin_done("ana", &["retry", "submission", &submission])
        .await;
    assert!(done.contains("failed -> queued"), "{done}");
    let stored = wait_item(&client, &item_id, Duration::from_secs(120)).await;
    assert_eq!(
        stored.state,
        pb::SubmissionState::Stored as i32,
        "{stored:?}"
    );
    assert_eq!(
        app.count(&format!(
            "SELECT count(*) FROM file_versions WHERE upload_id = '{}'",
            up.upload_id
        ))
        .await,
        1
    );
    // The submission's history: failed by the move job, retried by the operator,
    // then saved and stored by the jobs.
    let lines = history(&app, "submission_events", "submission_id", &submission).await;
    let tail: Vec<_> = lines.iter().skip(2).cloned().collect();
    assert_eq!(
        tail,
        [
            line("persisted", "failed", "failed", "job:item.move"),
            line("failed", "queued", "retried", "operator:ana"),
            line("queued", "persisted", "persisted", "job:item.persist"),
            line("persisted", "stored", "stored", "job:item.move"),
        ],
        "{lines:#?}"
    );
    // The upload went back to the seller when the submission failed, and was
    // submitted again by the operator's retry.
    let ups = upload_history(&app, &up.upload_id).await;
    assert!(
        ups.ends_with(&[
            line("ready", "submitted", "submitted", "seller:seller-outage"),
            line("submitted", "ready", "released", "job:item.move"),
            line("ready", "submitted", "submitted", "operator:ana"),
            line("submitted", "stored", "stored", "job:item.move"),
        ]),
        "{ups:#?}"
    );
    // Retrying a stored submission is refused.
    let again = app
        .admin("ana", &["retry", "submission", &submission])
        .await;
    assert!(
        matches!(again, Outcome::Refused(ref why) if why.contains("is stored")),
        "{again:?}"
    );
    let shown = app
        .admin_done("ana", &["show", "submission", &submission])
        .await;
    assert!(
        shown.contains("operator:ana") && shown.contains("item.move"),
        "{shown}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stuck_upload_is_requeued_and_finishes() {
    let app = TestApp::spawn_with(AppOptions {
        worker: false,
        ..Default::default()
    })
    .await;
    let file = TestFile::random(MIB);
    let (client, upload) = app.upload_parts("seller-stuck", &file, None).await;
    client.complete(&upload.upload_id).await.expect("complete");
    // Its scan job is gone (purged by hand): nothing will ever pick it up, and an
    // hour later ops see it among the stuck uploads, with no live job.
    app.execute("DELETE FROM apalis.jobs").await;
    app.execute("UPDATE uploads SET updated_at = now() - interval '1 hour'")
        .await;
    let stuck = format!(
        "SELECT count(*) FROM ops.stuck_uploads WHERE id = '{}' AND state = 'uploaded' AND live_jobs IS NULL",
        upload.upload_id
    );
    assert_eq!(app.count(&stuck).await, 1);
    let listed = app
        .admin_done(
            "bo",
            &[
                "list",
                "uploads",
                "--state",
                "uploaded",
                "--seller",
                "seller-stuck",
            ],
        )
        .await;
    assert!(listed.contains(&upload.upload_id), "{listed}");
    let done = app
        .admin_done("bo", &["requeue", "upload", &upload.upload_id])
        .await;
    assert!(done.contains("upload.scan attempt 1"), "{done}");
    // Queued now: requeueing again is refused, and adds nothing.
    let again = app
        .admin("bo", &["requeue", "upload", &upload.upload_id])
        .await;
    assert!(
        matches!(again, Outcome::Refused(ref why) if why.contains("not stuck")),
        "{again:?}"
    );
    assert_eq!(app.count("SELECT count(*) FROM apalis.jobs").await, 1);
    assert_eq!(app.count(&stuck).await, 0, "a live job now");
    assert_eq!(
        app.count("SELECT ready FROM ops.queue_depth WHERE queue = 'upload.scan'")
            .await,
        1
    );

    let worker = TestApp::spawn_worker_for(&app, AppOptions::default()).await;
    let ready = app
        .wait_settled(&client, &upload.upload_id, Duration::from_secs(60))
        .await;
    assert_eq!(ready.state, pb::UploadState::Ready as i32);
    drop(worker);
    let lines = upload_history(&app, &upload.upload_id).await;
    assert_eq!(
        lines[3],
        line("uploaded", "uploaded", "requeued", "operator:bo"),
        "{lines:#?}"
    );
    assert_eq!(
        lines[4],
        line("uploaded", "scanning", "scan_started", "job:upload.scan")
    );
    // A ready upload waits on nothing: requeueing it is refused.
    let settled = app
        .admin("bo", &["requeue", "upload", &upload.upload_id])
        .await;
    assert!(
        matches!(settled, Outcome::Refused(ref why) if why.contains("is ready")),
        "{settled:?}"
    );
    let shown = app
        .admin_done("bo", &["show", "upload", &upload.upload_id])
        .await;
    assert!(
        shown.contains("requeued") && shown.contains("upload.scan"),
        "{shown}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_webhook_is_redelivered_under_the_same_notification_id() {
    let mut hook = HookListener::start().await;
    let app = TestApp::spawn_with(AppOptions {
        worker_env: vec![
            ("UPLOAD_WEBHOOK_URL".into(), hook.url.clone()),
            ("UPLOAD_WEBHOOK_SECRET".into(), SECRET.into()),
        ],
        ..Default::default()
    })
    .await;
    let file = TestFile::from_bytes("eicar.txt", EICAR);
    let (client, upload) = app
        .upload_whole("seller-redeliver", &file, "notes.txt", "text/plain")
        .await;
    let settled = app
        .wait_settled(&client, &upload.upload_id, Duration::from_secs(60))
        .await;
    assert_eq!(settled.state, pb::UploadState::Quarantined as i32);
    let recv = async |hook: &mut HookListener| {
        tokio::time::timeout(Duration::from_secs(30), hook.requests.recv())
            .await
            .expect("a webhook call")
            .expect("a request")
    };
    let first = recv(&mut hook).await;
    let id = first
        .header("x-upload-notification-id")
        .expect("notification id")
        .to_owned();
    app.wait_count(
        "SELECT count(*) FROM notifications WHERE delivered_at IS NOT NULL",
        1,
        Duration::from_secs(10),
    )
    .await;

    let done = app.admin_done("cy", &["redeliver", &id]).await;
    assert!(done.contains(&id), "{done}");
    let second = recv(&mut hook).await;
    assert_eq!(second.header("x-upload-notification-id"), Some(id.as_str()));
    assert_eq!(second.body, first.body, "the same notification, again");
    let lines = upload_history(&app, &upload.upload_id).await;
    assert_eq!(
        lines.last(),
        Some(&line(
            "quarantined",
            "quarantined",
            "redelivered",
            "operator:cy"
        )),
        "{lines:#?}"
    );
    // An id that names no notification is refused.
    let unknown = app
        .admin("cy", &["redeliver", "018f0000-0000-7000-8000-000000000000"])
        .await;
    assert!(
        matches!(unknown, Outcome::Refused(ref why) if why.contains("no notification")),
        "{unknown:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upload_whose_scan_failed_while_clamd_was_away_is_retried_from_the_scan() {
    let app = TestApp::spawn_with(AppOptions {
        worker: false,
        ..Default::default()
    })
    .await;
    // A worker whose scanner is away, with one attempt: the scan fails for good.
    let away = TestApp::spawn_worker_for(
        &app,
        AppOptions {
            worker_env: vec![
                (
                    "UPLOAD_CLAMD_ADDR".into(),
                    format!("127.0.0.1:{}", free_port()),
                ),
                ("UPLOAD_JOB_MAX_ATTEMPTS".into(), "1".into()),
            ],
            ..Default::default()
        },
    )
    .await;
    let file = TestFile::random(MIB + 11);
    let (client, up) = app
        .upload_whole("seller-rescan", &file, "a.bin", "application/octet-stream")
        .await;
    let failed = app
        .wait_settled(&client, &up.upload_id, Duration::from_secs(60))
        .await;
    assert_eq!(failed.state, pb::UploadState::Failed as i32, "{failed:?}");
    let code = upload_domain::FailureCode::ScanFailed;
    assert_eq!(failed.failure.expect("failure").code, code.as_str());
    drop(away);

    let done = app
        .admin_done("di", &["retry", "upload", &up.upload_id])
        .await;
    assert!(
        done.contains(&format!(
            "failed ({code}) -> uploaded; queued upload.scan attempt 2"
        )),
        "{done}"
    );
    // Retried once: a second retry finds nothing failed.
    let again = app.admin("di", &["retry", "upload", &up.upload_id]).await;
    assert!(
        matches!(again, Outcome::Refused(ref why) if why.contains("is uploaded")),
        "{again:?}"
    );

    let worker = TestApp::spawn_worker_for(&app, AppOptions::default()).await;
    let ready = app
        .wait_settled(&client, &up.upload_id, Duration::from_secs(60))
        .await;
    assert_eq!(ready.state, pb::UploadState::Ready as i32, "{ready:?}");
    assert!(ready.failure.is_none());
    assert_eq!(ready.metadata.expect("hashes").md5_hex, file.md5_hex);
    drop(worker);
    let lines = upload_history(&app, &up.upload_id).await;
    let from_failure: Vec<_> = lines
        .iter()
        .skip_while(|l| l.2 != "failed")
        .take(4)
        .cloned()
        .collect();
    assert_eq!(
        from_failure,
        [
            line("scanning", "failed", "failed", "job:upload.scan"),
            line("failed", "uploaded", "retried", "operator:di"),
            line("uploaded", "scanning", "scan_started", "job:upload.scan"),
            line("scanning", "processing", "scanned", "job:upload.scan"),
        ],
        "{lines:#?}"
    );
}
