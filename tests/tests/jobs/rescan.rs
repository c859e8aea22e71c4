//! The re-scan job: a file holding a marker that only signature database B knows
//! is stored under database A by two sellers (one object, two versions), beside
//! three clean files and one ready upload of the marker never submitted. clamd is
//! switched to database B (as freshclam would, then RELOAD): the worker sees the
//! newer signatures and re-scans the catalogue, each object once; it is killed after
//! its first object and a new worker finishes the run. Both versions then refuse
//! downloads saying why, ListVersions shows them quarantined, the object is in the
//! quarantine bucket and gone from regular, both owners are told (webhook too), and
//! the ready upload is quarantined.

use std::time::Duration;

use upload_domain::{FailureCode, NotificationKind, ScanVerdict};
use upload_e2e::{
    AppOptions, Clamd, HookListener, MIB, RESCAN_MARKER, TestApp, TestFile, WorkerProcess,
    free_port, pb, poll_until, signatures_b,
};

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
async fn newer_signatures_quarantine_every_version_of_a_stored_file_even_across_a_killed_worker() {
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

    // Both versions refuse downloads, saying why; ListVersions shows the quarantine.
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
            refused.message().contains("malware") && refused.message().contains("RescanMarker"),
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
        let quarantine = versions[0].quarantined.clone().expect("shown quarantined");
        assert!(
            quarantine.signature.contains("RescanMarker"),
            "{quarantine:?}"
        );
        assert_eq!(quarantine.signature_version, 2);
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

    // The object moved: in quarantine byte for byte, gone from regular.
    let md5 = &marked.md5_hex;
    assert!(
        app.object_bytes(app.regular_bucket(), &format!("files/{md5}"))
            .await
            .is_none()
    );
    assert_eq!(
        app.object_bytes(
            app.bucket(upload_storage::Bucket::Quarantine),
            &format!("infected-files/{md5}")
        )
        .await,
        Some(std::fs::read(&marked.path).unwrap())
    );

    // Both owners told, the webhook too.
    assert_eq!(
        app.count(&format!(
            "SELECT count(DISTINCT seller_id) FROM notifications WHERE kind = '{}' AND details->>'signature' LIKE '%RescanMarker%'",
            NotificationKind::FileQuarantined
        ))
        .await,
        2
    );
    assert_eq!(
        app.count(&format!(
            "SELECT count(*) FROM notifications WHERE kind = '{}'",
            NotificationKind::FileQuarantined
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
        if request.header("x-upload-event") == Some(NotificationKind::FileQuarantined.as_str()) {
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
