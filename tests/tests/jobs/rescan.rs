//! The re-scan job: a file holding a marker that only signature database B knows
//! is stored under database A by two sellers (one object, two versions), beside
//! three clean files and one ready upload of the marker never submitted. clamd is
//! switched to database B (as freshclam would, then RELOAD): the worker sees the
//! newer signatures and re-scans the catalogue, each object once; it is killed after
//! its first object and a new worker finishes the run. Both versions then refuse
//! downloads saying why, ListVersions shows them held, the object is kept at its
//! held key in the regular bucket (never in the quarantine bucket, whose rule
//! expires it) and gone from its MD5 key, both owners are told (webhook too), and
//! the ready upload is quarantined.
//!
//! Then what an operator does with held content: released, it downloads again with
//! the same bytes and its sellers are told; the same finding under newer signatures
//! holds nothing, another finding holds it again (and tells again); confirmed, it is
//! quarantined for its days there. Held content found clean by newer signatures is
//! listed for operators. Content held is never stored again by another seller's
//! upload of the same bytes.

use std::time::Duration;

use upload_domain::{FailureCode, NotificationKind, ScanVerdict};
use upload_e2e::{
    AppOptions, Clamd, HookListener, MIB, RESCAN_MARKER, TestApp, TestFile, WorkerProcess, fetch,
    free_port, pb, poll_until, signatures_b, signatures_c, signatures_d, signatures_e,
};
use upload_server::admin::Outcome;

use crate::SECRET;

/// Stores `file` as a new item of `seller`; returns the client and the item.
async fn store(
    app: &TestApp,
    seller: &str,
    file: &TestFile,
    title: &str,
) -> (upload_client::UploadClient, pb::Item) {
    let name = format!("{title}.bin");
    let (client, _, item) = app
        .stored_item(seller, file, (&name, "application/octet-stream"), title)
        .await;
    (client, item)
}

async fn download(
    client: &upload_client::UploadClient,
    item: &pb::Item,
) -> Result<pb::GetDownloadUrlResponse, tonic::Status> {
    client
        .items()
        .get_download_url(pb::GetDownloadUrlRequest {
            item_id: item.item_id.clone(),
            file_id: item.files[0].file_id.clone(),
            version: 0,
        })
        .await
        .map(tonic::Response::into_inner)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn newer_signatures_hold_every_version_of_a_stored_file_even_across_a_killed_worker() {
    let clamd = Clamd::start(free_port()).await;
    let mut hook = HookListener::start().await;
    let app = TestApp::spawn_with(AppOptions {
        worker: false,
        worker_env: vec![
            ("UPLOAD_CLAMD_ADDR".into(), clamd.addr()),
            ("UPLOAD_SIGNATURE_CHECK_SECS".into(), "1".into()),
            ("UPLOAD_RESCAN_BYTES_PER_SEC".into(), (16 * MIB).to_string()),
            ("UPLOAD_WEBHOOK_URL".into(), hook.url.clone()),
            ("UPLOAD_WEBHOOK_SECRET".into(), SECRET.into()),
        ],
        ..Default::default()
    })
    .await;
    let exe = env!("CARGO_BIN_EXE_test-worker");
    // Stops for good after its first re-scanned object, to be killed there.
    let mut first = WorkerProcess::start(exe, &app, Some("rescan.target-done"));

    let marked = TestFile::random_with_tail(5 * MIB, RESCAN_MARKER);
    let (client_a, item_a) = store(&app, "seller-a", &marked, "marked-a").await;
    let (client_b, item_b) = store(&app, "seller-b", &marked, "marked-b").await;
    let mut clean = Vec::new();
    for i in 0..3 {
        let file = TestFile::random(5 * MIB + i);
        clean.push((
            store(&app, "seller-a", &file, &format!("clean-{i}")).await,
            file,
        ));
    }
    let (client_c, waiting) = app
        .ready_upload(
            "seller-c",
            &marked,
            "marked-c.bin",
            "application/octet-stream",
        )
        .await;

    // Under database A everything is clean, with its provenance, and nothing to re-scan.
    assert_eq!(
        app.count("SELECT count(*) FROM stored_objects").await,
        4,
        "one object for the two marked versions"
    );
    assert_eq!(
        app.count("SELECT count(*) FROM stored_objects WHERE signature_version = 1 AND engine_version LIKE 'ClamAV %'").await,
        4
    );
    for item in [&item_a, &item_b] {
        download(
            if item.item_id == item_a.item_id {
                &client_a
            } else {
                &client_b
            },
            item,
        )
        .await
        .expect("downloadable under database A");
    }
    let scan = waiting.scan.clone().expect("verdict");
    assert_eq!(
        (scan.verdict, scan.signature_version),
        (pb::ScanVerdict::Clean as i32, 1)
    );
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(
        app.count("SELECT count(*) FROM rescan_runs").await,
        0,
        "signatures unchanged: no run"
    );

    // Database B arrives: the worker starts a run and stops after its first object.
    clamd.switch_signatures(&signatures_b()).await;
    assert_eq!(clamd.signature_version().await, 2);
    assert_eq!(
        first.wait_for_failpoint(Duration::from_secs(60)).await,
        "rescan.target-done"
    );
    let killed = first.kill().await;
    let done_at_kill = app
        .count("SELECT objects_done FROM rescan_runs WHERE signature_version = 2")
        .await;
    let total = app
        .count("SELECT objects_total FROM rescan_runs WHERE signature_version = 2")
        .await;
    assert_eq!(total, 5, "four objects (each once) and one ready upload");
    assert!(
        done_at_kill >= 1 && done_at_kill < total,
        "killed mid-run: {done_at_kill} of {total}"
    );
    assert_eq!(
        app.count("SELECT count(*) FROM rescan_runs WHERE state = 'running'")
            .await,
        1,
        "the run is visible while it goes"
    );

    // A new worker finishes the catalogue.
    let second = WorkerProcess::start(exe, &app, None);
    app.wait_count(
        "SELECT count(*) FROM rescan_runs WHERE signature_version = 2 AND state = 'finished'",
        1,
        Duration::from_secs(90),
    )
    .await;
    println!(
        "re-scan finished {:.1} s after the worker was killed",
        killed.elapsed().as_secs_f64()
    );
    assert_eq!(
        app.count("SELECT count(*) FROM rescan_runs WHERE signature_version = 2 AND infected_found = 2 AND objects_done >= objects_total").await,
        1
    );

    // Both versions refuse downloads, saying why; ListVersions shows the hold.
    for (client, item) in [(&client_a, &item_a), (&client_b, &item_b)] {
        let refused = download(client, item)
            .await
            .expect_err("no longer downloadable");
        assert_eq!(
            refused.code(),
            tonic::Code::FailedPrecondition,
            "{refused:?}"
        );
        assert!(
            refused.message().contains("malware")
                && refused.message().contains("RescanMarker")
                && refused.message().contains("held"),
            "{refused:?}"
        );
        let versions = client
            .items()
            .list_versions(pb::ListVersionsRequest {
                item_id: item.item_id.clone(),
                file_id: String::new(),
            })
            .await
            .expect("ListVersions")
            .into_inner()
            .versions;
        let quarantine = versions[0].quarantined.clone().expect("shown held");
        assert!(
            quarantine.signature.contains("RescanMarker"),
            "{quarantine:?}"
        );
        assert_eq!(quarantine.signature_version, 2);
        assert!(
            quarantine.held,
            "held for review, not quarantined: {quarantine:?}"
        );
    }
    // The clean files are re-scanned under B and still download.
    for ((client, item), _) in &clean {
        download(client, item)
            .await
            .expect("a clean file stays downloadable");
    }
    assert_eq!(
        app.count(&format!(
            "SELECT count(*) FROM stored_objects WHERE signature_version = 2 AND verdict = '{}'",
            ScanVerdict::Clean
        ))
        .await,
        3
    );

    // The object moved to its held key, byte for byte: in the regular bucket, where
    // nothing expires, and not in the quarantine bucket, whose rule would delete it.
    let md5 = &marked.md5_hex;
    assert!(
        app.object_bytes(app.regular_bucket(), &format!("files/{md5}"))
            .await
            .is_none()
    );
    assert_eq!(
        app.object_bytes(app.regular_bucket(), &format!("held/{md5}"))
            .await,
        Some(std::fs::read(&marked.path).unwrap())
    );
    assert!(
        app.object_bytes(
            app.bucket(upload_storage::Bucket::Quarantine),
            &format!("infected-files/{md5}")
        )
        .await
        .is_none(),
        "a hold is not a quarantine"
    );
    assert_eq!(
        app.count(&format!(
            "SELECT count(*) FROM ops.held_objects WHERE md5_hex = '{md5}' AND versions = 2 \
             AND sellers = 'seller-a, seller-b' AND signature LIKE '%RescanMarker%'"
        ))
        .await,
        1,
        "operators see it held, with who sells it"
    );

    // Both owners told, the webhook too.
    assert_eq!(
        app.count(&format!(
            "SELECT count(DISTINCT seller_id) FROM notifications WHERE kind = '{}' AND details->>'signature' LIKE '%RescanMarker%'",
            NotificationKind::FileHeld
        ))
        .await,
        2
    );
    assert_eq!(
        app.count(&format!(
            "SELECT count(*) FROM notifications WHERE kind = '{}'",
            NotificationKind::FileHeld
        ))
        .await,
        2
    );
    let mut told = Vec::new();
    while told.len() < 2 {
        let request = tokio::time::timeout(Duration::from_secs(30), hook.requests.recv())
            .await
            .expect("webhooks arrive")
            .expect("a request");
        if request.header("x-upload-event") == Some(NotificationKind::FileHeld.as_str()) {
            let body: serde_json::Value = serde_json::from_slice(&request.body).expect("json");
            told.push(body["seller_id"].as_str().unwrap_or_default().to_owned());
        }
    }
    told.sort();
    assert_eq!(told, ["seller-a", "seller-b"]);

    // The ready upload of the same bytes is quarantined as after a first scan.
    let quarantined = poll_until(
        "the ready upload to be quarantined",
        Duration::from_secs(30),
        || async {
            let upload = client_c
                .get(&waiting.upload_id)
                .await
                .expect("GetUpload")
                .upload
                .expect("upload");
            (upload.state == pb::UploadState::Quarantined as i32, upload)
        },
    )
    .await;
    assert_eq!(
        quarantined.failure.expect("reason").code,
        FailureCode::Infected.as_str()
    );
    let scan = quarantined.scan.expect("verdict");
    assert_eq!(
        (scan.verdict, scan.signature_version),
        (pb::ScanVerdict::Infected as i32, 2)
    );
    assert!(scan.engine_version.starts_with("ClamAV "), "{scan:?}");
    assert_eq!(
        app.count(&format!(
            "SELECT count(*) FROM notifications WHERE upload_id = '{}' AND kind = '{}'",
            waiting.upload_id,
            NotificationKind::UploadQuarantined
        ))
        .await,
        1
    );
    assert!(
        app.object_bytes(
            app.bucket(upload_storage::Bucket::Quarantine),
            &format!("infected/seller-c/{}", waiting.upload_id)
        )
        .await
        .is_some()
    );
    second.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_with_older_signatures_than_its_verdicts_starts_no_run() {
    // The positive control of the watch: verdicts made with database B, clamd still
    // on B: nothing is newer, nothing is re-scanned.
    let clamd = Clamd::start(free_port()).await;
    clamd.switch_signatures(&signatures_b()).await;
    let app = TestApp::spawn_with(AppOptions {
        worker_env: vec![
            ("UPLOAD_CLAMD_ADDR".into(), clamd.addr()),
            ("UPLOAD_SIGNATURE_CHECK_SECS".into(), "1".into()),
        ],
        ..Default::default()
    })
    .await;
    let file = TestFile::random(MIB);
    let (_, ready) = app
        .ready_upload("seller-d", &file, "d.bin", "application/octet-stream")
        .await;
    assert_eq!(ready.scan.expect("verdict").signature_version, 2);
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(app.count("SELECT count(*) FROM rescan_runs").await, 0);
}

/// A test app whose worker re-scans with `clamd` (checking its signatures every
/// second, reading fast).
async fn app_scanning_with(clamd: &Clamd) -> TestApp {
    TestApp::spawn_with(AppOptions {
        worker_env: vec![
            ("UPLOAD_CLAMD_ADDR".into(), clamd.addr()),
            ("UPLOAD_SIGNATURE_CHECK_SECS".into(), "1".into()),
            ("UPLOAD_RESCAN_BYTES_PER_SEC".into(), (64 * MIB).to_string()),
        ],
        ..Default::default()
    })
    .await
}

/// Waits for the re-scan run of signature `version` to finish.
async fn run_finished(app: &TestApp, version: i64) {
    app.wait_count(
        &format!(
            "SELECT count(*) FROM rescan_runs WHERE signature_version = {version} AND state = 'finished'"
        ),
        1,
        Duration::from_secs(90),
    )
    .await;
}

/// Notifications of `kind`.
async fn told(app: &TestApp, kind: NotificationKind) -> i64 {
    app.count(&format!(
        "SELECT count(*) FROM notifications WHERE kind = '{kind}'"
    ))
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_held_file_released_downloads_again_and_only_another_finding_holds_it_again_until_confirmed()
 {
    let clamd = Clamd::start(free_port()).await;
    let app = app_scanning_with(&clamd).await;
    let marked = TestFile::random_with_tail(2 * MIB, RESCAN_MARKER);
    let bytes = std::fs::read(&marked.path).unwrap();
    let md5 = marked.md5_hex.clone();
    let (client_a, item_a) = store(&app, "seller-a", &marked, "marked-a").await;
    let (client_b, item_b) = store(&app, "seller-b", &marked, "marked-b").await;
    let owners = [(&client_a, &item_a), (&client_b, &item_b)];

    // Database B flags it: held.
    clamd.switch_signatures(&signatures_b()).await;
    run_finished(&app, 2).await;
    for (client, item) in owners {
        assert_eq!(
            download(client, item).await.expect_err("held").code(),
            tonic::Code::FailedPrecondition
        );
    }
    assert_eq!(told(&app, NotificationKind::FileHeld).await, 2);

    // An operator releases it, saying why: both versions download the same bytes,
    // both owners are told, and the verdict names the operator, the reason and the
    // finding overridden.
    let done = app
        .admin_done(
            "gil",
            &[
                "release",
                &md5,
                "--reason",
                "a false positive of signatures 2",
            ],
        )
        .await;
    assert!(
        done.contains("downloadable") && done.contains("2 version owner(s) told"),
        "{done}"
    );
    for (client, item) in owners {
        let link = download(client, item)
            .await
            .expect("released: downloadable");
        assert_eq!(fetch(&link.url).await.body, bytes, "the same bytes");
    }
    assert_eq!(told(&app, NotificationKind::FileReleased).await, 2);
    assert_eq!(
        app.count(&format!(
            "SELECT count(*) FROM stored_objects WHERE md5_hex = '{md5}' AND standing = 'stored' \
             AND verdict = 'released' AND released_by = 'operator:gil' \
             AND release_reason = 'a false positive of signatures 2' \
             AND released_signature LIKE 'Upload.Test.RescanMarker%'"
        ))
        .await,
        1
    );
    assert!(
        app.object_bytes(app.regular_bucket(), &format!("held/{md5}"))
            .await
            .is_none(),
        "the held copy is gone"
    );
    assert_eq!(
        app.count(&format!(
            "SELECT count(*) FROM object_events WHERE md5_hex = '{md5}' AND cause = 'released' \
             AND actor = 'operator:gil' AND detail LIKE '%false positive%'"
        ))
        .await,
        1
    );
    let again = app
        .admin("gil", &["release", &md5, "--reason", "twice"])
        .await;
    assert!(
        matches!(&again, Outcome::Refused(why) if why.contains("not held")),
        "{again:?}"
    );

    // Database C finds the same thing again under newer signatures: the operator
    // overrode that finding, so nothing is held.
    clamd.switch_signatures(&signatures_c()).await;
    run_finished(&app, 3).await;
    for (client, item) in owners {
        download(client, item)
            .await
            .expect("the overridden finding holds nothing");
    }
    assert_eq!(
        app.count(&format!(
            "SELECT count(*) FROM stored_objects WHERE md5_hex = '{md5}' AND signature_version = 3 \
             AND standing = 'stored' AND verdict = 'released'"
        ))
        .await,
        1
    );
    assert_eq!(
        told(&app, NotificationKind::FileHeld).await,
        2,
        "no one told again"
    );

    // Database D finds something else in it: held again, and both owners told again
    // (a second notice of the same kind about the same version).
    clamd.switch_signatures(&signatures_d()).await;
    run_finished(&app, 4).await;
    for (client, item) in owners {
        let refused = download(client, item).await.expect_err("held again");
        assert!(refused.message().contains("Revised"), "{refused:?}");
    }
    assert_eq!(told(&app, NotificationKind::FileHeld).await, 4);
    assert_eq!(
        app.count(&format!(
            "SELECT count(*) FROM (SELECT upload_id FROM notifications WHERE kind = '{}' \
             GROUP BY upload_id HAVING count(DISTINCT occasion) = 2) twice",
            NotificationKind::FileHeld
        ))
        .await,
        2,
        "each version's owner heard of each hold"
    );

    // Confirmed: quarantined, for the quarantine bucket's days; never downloadable.
    let done = app.admin_done("gil", &["confirm", &md5]).await;
    assert!(done.contains("quarantined"), "{done}");
    assert_eq!(
        app.object_bytes(
            app.bucket(upload_storage::Bucket::Quarantine),
            &format!("infected-files/{md5}")
        )
        .await,
        Some(bytes.clone()),
        "kept until its days in quarantine end"
    );
    for key in [format!("files/{md5}"), format!("held/{md5}")] {
        assert!(
            app.object_bytes(app.regular_bucket(), &key).await.is_none(),
            "{key}"
        );
    }
    let rules = app
        .store
        .client()
        .get_bucket_lifecycle_configuration()
        .bucket(app.bucket(upload_storage::Bucket::Quarantine))
        .send()
        .await
        .expect("the quarantine bucket's rules");
    assert!(
        rules
            .rules()
            .iter()
            .any(|r| r.expiration().and_then(|e| e.days()) == Some(upload_domain::QUARANTINE_DAYS)),
        "{rules:?}"
    );
    assert_eq!(told(&app, NotificationKind::FileQuarantined).await, 2);
    for (client, item) in owners {
        let refused = download(client, item).await.expect_err("confirmed");
        assert!(refused.message().contains("confirmed"), "{refused:?}");
    }
    let late = app
        .admin("gil", &["release", &md5, "--reason", "too late"])
        .await;
    assert!(matches!(late, Outcome::Refused(_)), "{late:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn held_content_that_newer_signatures_find_clean_is_listed_for_operators_and_stays_held() {
    let clamd = Clamd::start(free_port()).await;
    let app = app_scanning_with(&clamd).await;
    let marked = TestFile::random_with_tail(MIB, RESCAN_MARKER);
    let md5 = marked.md5_hex.clone();
    let (client, item) = store(&app, "seller-e", &marked, "marked-e").await;
    clamd.switch_signatures(&signatures_b()).await;
    run_finished(&app, 2).await;
    assert_eq!(
        app.count(&format!(
            "SELECT count(*) FROM ops.held_objects WHERE md5_hex = '{md5}' AND clean_under_version IS NULL"
        ))
        .await,
        1
    );
    // Database E no longer finds the marker: the held object is re-scanned, found
    // clean, and listed so; it stays held until an operator decides.
    clamd.switch_signatures(&signatures_e()).await;
    run_finished(&app, 3).await;
    assert_eq!(
        app.count(&format!(
            "SELECT count(*) FROM ops.held_objects WHERE md5_hex = '{md5}' AND clean_under_version = 3"
        ))
        .await,
        1
    );
    assert_eq!(
        app.count(&format!(
            "SELECT count(*) FROM object_events WHERE md5_hex = '{md5}' AND cause = 'clean_while_held'"
        ))
        .await,
        1
    );
    assert_eq!(
        download(&client, &item)
            .await
            .expect_err("still held")
            .code(),
        tonic::Code::FailedPrecondition
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn content_held_is_never_stored_again_by_another_upload_of_the_same_bytes() {
    // The pipeline's worker still scans with database A; a re-scanning worker of
    // its own has database B, flags the stored file and holds it.
    let old = Clamd::start(free_port()).await;
    let new = Clamd::start(free_port()).await;
    new.switch_signatures(&signatures_b()).await;
    let app = TestApp::spawn_with(AppOptions {
        worker_env: vec![
            ("UPLOAD_CLAMD_ADDR".into(), old.addr()),
            (
                "UPLOAD_WORKER_QUEUES".into(),
                "scan,metadata,preview,notify,persist,move".into(),
            ),
        ],
        ..Default::default()
    })
    .await;
    let marked = TestFile::random_with_tail(MIB, RESCAN_MARKER);
    let md5 = marked.md5_hex.clone();
    store(&app, "seller-a", &marked, "marked-a").await;
    let rescanner = WorkerProcess::start_with(
        env!("CARGO_BIN_EXE_test-worker"),
        &app,
        None,
        &[
            ("UPLOAD_CLAMD_ADDR", new.addr()),
            ("UPLOAD_WORKER_QUEUES", "rescan".into()),
            ("UPLOAD_SIGNATURE_CHECK_SECS", "1".into()),
            ("UPLOAD_RESCAN_BYTES_PER_SEC", (64 * MIB).to_string()),
        ],
    );
    run_finished(&app, 2).await;
    app.wait_count(
        &format!(
            "SELECT count(*) FROM stored_objects WHERE md5_hex = '{md5}' AND standing = 'held' \
             AND held_moved_at IS NOT NULL"
        ),
        1,
        Duration::from_secs(30),
    )
    .await;
    rescanner.stop().await;

    // Another seller uploads the same bytes: database A passes them, and their
    // submission is refused by the move, which copies nothing back.
    let (client, up) = app
        .ready_upload(
            "seller-c",
            &marked,
            "marked-c.bin",
            "application/octet-stream",
        )
        .await;
    let res = upload_e2e::submit_new_item(
        &client,
        "same-bytes",
        pb::ItemKind::DigitalFile,
        "Same bytes",
        &up.upload_id,
    )
    .await;
    let item_id = res.item.expect("item").item_id;
    let failed = upload_e2e::wait_item(&client, &item_id, Duration::from_secs(60)).await;
    assert_eq!(
        failed.state,
        pb::SubmissionState::Failed as i32,
        "{failed:?}"
    );
    let failure = failed.failure.expect("why");
    assert_eq!(failure.code, FailureCode::ContentHeld.as_str());
    assert!(failure.message.contains("held"), "{}", failure.message);
    assert!(
        app.object_bytes(app.regular_bucket(), &format!("files/{md5}"))
            .await
            .is_none(),
        "nothing copied back where downloads read"
    );
    assert_eq!(
        app.object_bytes(app.regular_bucket(), &format!("held/{md5}"))
            .await,
        Some(std::fs::read(&marked.path).unwrap()),
        "the held copy untouched"
    );
    assert_eq!(
        app.count(&format!(
            "SELECT count(*) FROM file_versions WHERE upload_id = '{}'",
            up.upload_id
        ))
        .await,
        0
    );
    assert_eq!(
        app.count(&format!(
            "SELECT count(*) FROM notifications WHERE kind = '{}'",
            NotificationKind::ItemStored
        ))
        .await,
        1,
        "only seller-a's item was stored, nothing of seller-c's"
    );
}
