//! The admin tool (`upload-admin`) on the real stack: a submission failed by a
//! store outage retried once the store is back, an upload whose scan failed
//! retried from the scan, a stuck upload requeued, a webhook redelivered under the
//! same notification id, a quarantine released (a released verdict naming the
//! operator, the reason and the finding; processed, submitted, stored and
//! downloaded; the seller told) or confirmed (kept for its days in quarantine, never
//! released); a file quarantined, released and quarantined again for another
//! finding tells the seller each time; each action in the history with the
//! operator's name, and a refusal changing nothing.

use std::time::Duration;

use upload_domain::{Bucket, NotificationKind, SellerId, UploadId};
use upload_e2e::{
    AppOptions, EICAR, FaultRules, HookListener, MIB, StoreFaults, TestApp, TestFile, free_port,
    pb, stack_env, submit_new_item, wait_item,
};
use upload_server::admin::Outcome;
use upload_storage::StorageKey;

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

/// An EICAR upload by `seller`, quarantined; its id and where its file could be.
async fn quarantined(
    app: &TestApp,
    seller: &str,
) -> (upload_client::UploadClient, String, [String; 2]) {
    let file = TestFile::from_bytes("eicar.txt", EICAR);
    let (client, up) = app
        .upload_whole(seller, &file, "notes.txt", "text/plain")
        .await;
    let held = app
        .wait_settled(&client, &up.upload_id, Duration::from_secs(60))
        .await;
    assert_eq!(held.state, pb::UploadState::Quarantined as i32, "{held:?}");
    let owner: SellerId = seller.parse().expect("seller id");
    let upload: UploadId = up.upload_id.parse().expect("upload id");
    let keys = [
        StorageKey::Quarantine {
            owner: &owner,
            upload,
        }
        .key(),
        StorageKey::Temp {
            owner: &owner,
            upload,
        }
        .key(),
    ];
    (client, up.upload_id, keys)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_quarantine_released_by_an_operator_is_processed_and_the_seller_told() {
    let (app, mut hook) = crate::app_with_webhook().await;
    let (client, id, [held, temp]) = quarantined(&app, "seller-release").await;
    let told = tokio::time::timeout(Duration::from_secs(30), hook.requests.recv()).await;
    assert!(
        told.is_ok_and(|r| r.is_some()),
        "the quarantine is told first"
    );

    let reasonless = app.admin("ed", &["release", &id, "--reason", " "]).await;
    assert!(
        matches!(reasonless, Outcome::Refused(ref why) if why.contains("--reason")),
        "{reasonless:?}"
    );
    let done = app
        .admin_done(
            "ed",
            &["release", &id, "--reason", "the test file, on purpose"],
        )
        .await;
    assert!(
        done.contains(
            "quarantined -> processing; queued upload.metadata attempt 1, upload.preview attempt 1"
        ),
        "{done}"
    );
    let again = app
        .admin("ed", &["release", &id, "--reason", "twice"])
        .await;
    assert!(
        matches!(again, Outcome::Refused(ref why) if why.contains("only a quarantined upload")),
        "{again:?}"
    );
    let ready = app
        .wait_settled(&client, &id, Duration::from_secs(60))
        .await;
    assert_eq!(ready.state, pb::UploadState::Ready as i32, "{ready:?}");
    assert!(ready.failure.is_none(), "{ready:?}");
    // Its verdict is the release: who, why, and the finding overridden.
    let scan = ready.scan.clone().expect("a verdict");
    assert_eq!(scan.verdict, pb::ScanVerdict::Released as i32, "{scan:?}");
    assert_eq!(scan.released_by, "operator:ed");
    assert_eq!(scan.release_reason, "the test file, on purpose");
    assert!(scan.released_signature.contains("EICAR"), "{scan:?}");
    assert_eq!(scan.signature_version, 1, "the signatures that found it");
    // The file is back in temp, the quarantined copy gone.
    let bytes = |bucket, key| app.object_bytes(app.bucket(bucket), key);
    assert_eq!(bytes(Bucket::Temp, &temp).await.as_deref(), Some(EICAR));
    assert_eq!(bytes(Bucket::Quarantine, &held).await, None);
    // The seller is told, by the webhook that told of the quarantine.
    let request = tokio::time::timeout(Duration::from_secs(30), hook.requests.recv())
        .await
        .expect("the release is told")
        .expect("a request");
    let body: serde_json::Value = serde_json::from_slice(&request.body).expect("json body");
    assert_eq!(body["kind"], NotificationKind::UploadReleased.as_str());
    assert_eq!(body["upload_id"], id.as_str());
    let lines = upload_history(&app, &id).await;
    let released: Vec<_> = lines
        .iter()
        .skip_while(|l| l.2 != "quarantine_released")
        .cloned()
        .collect();
    assert_eq!(
        released.first(),
        Some(&line(
            "quarantined",
            "processing",
            "quarantine_released",
            "operator:ed"
        )),
        "{lines:#?}"
    );
    assert_eq!(released.len(), 2, "{lines:#?}");
    assert_eq!(
        (
            released[1].0.as_str(),
            released[1].1.as_str(),
            released[1].2.as_str()
        ),
        ("processing", "ready", "processing_done")
    );
    assert!(released[1].3.starts_with("job:upload."), "{lines:#?}");

    // Released, it is submitted, stored and downloaded like any clean file, with
    // its own bytes; the stored object carries the release.
    let res = submit_new_item(
        &client,
        "released",
        pb::ItemKind::DigitalFile,
        "Released",
        &id,
    )
    .await;
    let item_id = res.item.expect("item").item_id;
    let stored = wait_item(&client, &item_id, Duration::from_secs(60)).await;
    assert_eq!(
        stored.state,
        pb::SubmissionState::Stored as i32,
        "{stored:?}"
    );
    let link = client
        .items()
        .get_download_url(pb::GetDownloadUrlRequest {
            item_id,
            file_id: stored.files[0].file_id.clone(),
            version: 0,
        })
        .await
        .expect("a released file downloads")
        .into_inner();
    assert_eq!(upload_e2e::fetch(&link.url).await.body, EICAR);
    assert_eq!(
        app.count(
            "SELECT count(*) FROM stored_objects WHERE verdict = 'released' \
             AND released_by = 'operator:ed' AND released_signature LIKE '%EICAR%'"
        )
        .await,
        1
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_file_quarantined_released_and_quarantined_again_for_another_finding_tells_each_time() {
    let clamd = upload_e2e::Clamd::start(free_port()).await;
    let app = TestApp::spawn_with(AppOptions {
        worker_env: vec![
            ("UPLOAD_CLAMD_ADDR".into(), clamd.addr()),
            ("UPLOAD_SIGNATURE_CHECK_SECS".into(), "1".into()),
        ],
        ..Default::default()
    })
    .await;
    let (client, id, _) = quarantined(&app, "seller-twice").await;
    app.admin_done("ed", &["release", &id, "--reason", "trusted sample"])
        .await;
    let ready = app
        .wait_settled(&client, &id, Duration::from_secs(60))
        .await;
    assert_eq!(ready.state, pb::UploadState::Ready as i32, "{ready:?}");
    // Database D names the same bytes otherwise: another finding, quarantined again.
    clamd.switch_signatures(&upload_e2e::signatures_d()).await;
    let again = upload_e2e::poll_until("quarantined again", Duration::from_secs(60), || async {
        let upload = client
            .get(&id)
            .await
            .expect("GetUpload")
            .upload
            .expect("upload");
        (upload.state == pb::UploadState::Quarantined as i32, upload)
    })
    .await;
    assert!(
        again.scan.expect("verdict").signature.contains("Revised"),
        "the other finding"
    );
    let kinds = |kind: NotificationKind| {
        let id = id.clone();
        let app = &app;
        async move {
            app.count(&format!(
                "SELECT count(*) FROM notifications WHERE upload_id = '{id}' AND kind = '{kind}'"
            ))
            .await
        }
    };
    assert_eq!(
        kinds(NotificationKind::UploadQuarantined).await,
        2,
        "told of each quarantine"
    );
    assert_eq!(kinds(NotificationKind::UploadReleased).await, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_confirmed_quarantine_keeps_its_file_for_its_days_and_cannot_be_released() {
    let app = TestApp::spawn().await;
    let (_, id, [held, _]) = quarantined(&app, "seller-confirm").await;
    assert!(
        app.object_bytes(app.bucket(Bucket::Quarantine), &held)
            .await
            .is_some()
    );

    let done = app.admin_done("fay", &["confirm", &id]).await;
    assert!(
        done.contains("confirmed; the file is deleted when its 4 days in quarantine end"),
        "{done}"
    );
    // The quarantine bucket's rule deletes it when its days there end, not now.
    assert_eq!(
        app.object_bytes(app.bucket(Bucket::Quarantine), &held)
            .await
            .as_deref(),
        Some(EICAR)
    );
    let lines = upload_history(&app, &id).await;
    assert_eq!(
        lines.last(),
        Some(&line(
            "quarantined",
            "quarantined",
            "quarantine_confirmed",
            "operator:fay"
        )),
        "{lines:#?}"
    );
    // Confirmed once; and a confirmed file cannot be released.
    for action in [&["confirm", &id][..], &["release", &id, "--reason", "late"]] {
        let refused = app.admin("gil", action).await;
        assert!(
            matches!(refused, Outcome::Refused(ref why) if why.contains("was confirmed by operator:fay")),
            "{action:?}: {refused:?}"
        );
    }
    assert_eq!(
        upload_history(&app, &id).await,
        lines,
        "refusals write nothing"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_release_after_the_quarantine_cleared_the_file_is_refused_and_changes_nothing() {
    let app = TestApp::spawn().await;
    let (client, id, [held, temp]) = quarantined(&app, "seller-cleared").await;
    // The quarantine bucket's lifecycle took the file.
    app.store
        .client()
        .delete_object()
        .bucket(app.bucket(Bucket::Quarantine))
        .key(&held)
        .send()
        .await
        .expect("delete");
    let before = upload_history(&app, &id).await;
    let refused = app
        .admin("ed", &["release", &id, "--reason", "too late"])
        .await;
    assert!(
        matches!(refused, Outcome::Refused(ref why) if why.contains("no longer in quarantine")),
        "{refused:?}"
    );
    assert_eq!(upload_history(&app, &id).await, before);
    let still = app.wait_settled(&client, &id, Duration::from_secs(5)).await;
    assert_eq!(still.state, pb::UploadState::Quarantined as i32);
    assert_eq!(
        app.object_bytes(app.bucket(Bucket::Temp), &temp).await,
        None
    );
}
