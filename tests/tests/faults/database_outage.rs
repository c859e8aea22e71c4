//! The database restarted while uploads are scanned, then stopped for twenty
//! seconds while their items are saved: the server and the worker are not
//! restarted, WatchProgress either goes on or ends with a status (and a new watch
//! works), and every upload ends ready and stored with each effect once.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use futures::StreamExt;
use upload_e2e::{
    AppOptions, MIB, PrivatePostgres, TestApp, TestFile, pb, poll_until, submit_new_item, wait_item,
};

use crate::{one_row_each, report, upload, wait_state};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_restarted_and_stopped_under_load_loses_no_upload() {
    let pg = PrivatePostgres::start();
    let app = TestApp::spawn_with(AppOptions {
        admin_database_url: Some(pg.admin_url()),
        env: vec![
            ("UPLOAD_JOB_RETRY_MAX_SECS".into(), "2".into()),
            ("UPLOAD_DATABASE_POOL_SIZE".into(), "8".into()),
        ],
        ..Default::default()
    })
    .await;
    let files: Vec<TestFile> = (0..6).map(|i| TestFile::random(40 * MIB + i)).collect();
    let uploads = futures::future::join_all(files.iter().enumerate().map(|(i, f)| {
        let app = &app;
        async move {
            upload(
                app,
                &format!("seller-db-{i}"),
                f,
                "data.bin",
                "application/octet-stream",
            )
            .await
        }
    }))
    .await;
    // A watcher on the first upload, recording how its stream ends.
    let (watcher, first) = &uploads[0];
    let mut stream = watcher
        .watch(&first.upload_id)
        .await
        .expect("WatchProgress");
    let watched = tokio::spawn(async move {
        let mut updates = 0;
        while let Some(update) = stream.next().await {
            match update {
                Ok(_) => updates += 1,
                Err(status) => return (updates, Some(status.code())),
            }
        }
        (updates, None)
    });

    // Restart PostgreSQL while files are being scanned.
    poll_until("a scan under way", Duration::from_secs(60), || async {
        let scanning = app
            .count("SELECT count(*) FROM uploads WHERE state = 'scanning'")
            .await;
        (scanning > 0, scanning)
    })
    .await;
    let restart = pg.restart();
    let mut ready = Vec::new();
    for (client, up) in &uploads {
        ready.push(
            wait_state(
                client,
                &up.upload_id,
                pb::UploadState::Ready,
                Duration::from_secs(180),
            )
            .await,
        );
    }
    let (updates, ended) = watched.await.expect("the watcher");
    assert!(
        matches!(
            ended,
            None | Some(tonic::Code::Unavailable | tonic::Code::Internal)
        ),
        "the stream ended with {ended:?}"
    );
    // A new watch on the same upload works: one snapshot, ready, and the end.
    let again: Vec<_> = watcher
        .watch(&first.upload_id)
        .await
        .expect("a new WatchProgress")
        .collect()
        .await;
    assert_eq!(again.len(), 1);
    assert_eq!(
        again[0]
            .as_ref()
            .expect("an update")
            .upload
            .as_ref()
            .map(|u| u.state),
        Some(pb::UploadState::Ready as i32)
    );

    // Submit everything, then stop the database while the items are saved.
    let mut items = Vec::new();
    for (i, (client, up)) in uploads.iter().enumerate() {
        let res = submit_new_item(
            client,
            &format!("db-{i}"),
            pb::ItemKind::DigitalFile,
            "Kept",
            &up.upload_id,
        )
        .await;
        items.push(res.item.expect("item").item_id);
    }
    let stop = Instant::now();
    pg.stop();
    tokio::time::sleep(Duration::from_secs(20)).await;
    pg.resume();
    let stopped_for = stop.elapsed();
    let back = Instant::now();
    for ((client, _), item) in uploads.iter().zip(&items) {
        let item = wait_item(client, item, Duration::from_secs(180)).await;
        assert_eq!(item.state, pb::SubmissionState::Stored as i32, "{item:?}");
    }
    let recovered_in = back.elapsed();
    // A job a worker took before the stop and whose end it could not record is
    // taken over once that worker counts as dead (after its missed heartbeats), and
    // runs again: let every such job finish, then count each effect once.
    app.wait_count(
        "SELECT count(*) FROM apalis.jobs WHERE status IN ('Pending', 'Queued', 'Running')",
        0,
        Duration::from_secs(90),
    )
    .await;

    // Each effect once.
    one_row_each(&app, "upload_scans", &ready).await;
    one_row_each(&app, "upload_metadata", &ready).await;
    one_row_each(&app, "file_versions", &ready).await;
    assert_eq!(
        app.count("SELECT count(*) FROM notifications WHERE kind = 'item.stored'")
            .await,
        6
    );
    for (file, up) in files.iter().zip(&ready) {
        assert_eq!(
            up.metadata.as_ref().map(|m| m.md5_hex.as_str()),
            Some(file.md5_hex.as_str())
        );
    }
    let mut figures = HashMap::new();
    figures.insert("restart_s", format!("{:.1}", restart.as_secs_f64()));
    figures.insert("stopped_s", format!("{:.1}", stopped_for.as_secs_f64()));
    figures.insert(
        "stored_after_s",
        format!("{:.1}", recovered_in.as_secs_f64()),
    );
    figures.insert("watch_updates", updates.to_string());
    figures.insert("watch_end", format!("{ended:?}"));
    figures.insert("uploads", "6".into());
    figures.insert("lost", "0".into());
    figures.insert("duplicates", "0".into());
    report("database outage", &figures);
}
