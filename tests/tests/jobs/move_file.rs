//! The move job: content at its MD5 key, shared by identical content and never
//! overwritten by other content; a crash between the copy and the delete finished by
//! running again (one version, no orphan); objects over the copy threshold copied
//! part by part; a store that stays down fails the submission with nothing lost.

use crate::{assert_moved_once, ready_then_no_worker, submit};
use upload_db::jobs::SubmissionJob;
use upload_domain::{FailureCode, NotificationKind};
use upload_e2e::{
    AppOptions, MIB, TestApp, TestFile, WAIT, free_port, pb, submit_new_item, wait_item,
};
use upload_storage::StorageKey;

/// No orphan: each content is one recorded object (the buckets are shared by
/// every test, so only this test's keys are looked at), and nothing of the
/// seller's uploads is left in the temp bucket.
async fn assert_no_orphan(app: &TestApp, seller: &str, files: &[&TestFile]) {
    for file in files {
        let key = format!("files/{}", file.md5_hex);
        assert_eq!(
            app.keys(app.regular_bucket(), &key).await,
            vec![key.clone()]
        );
        assert_eq!(
            app.count(&format!(
                "SELECT count(*) FROM stored_objects WHERE object_key = '{key}'"
            ))
            .await,
            1
        );
    }
    assert_eq!(
        app.keys(app.temp_bucket(), &format!("uploads/{seller}/"))
            .await,
        Vec::<String>::new()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_move_killed_between_copy_and_delete_runs_again_to_one_version_and_no_orphan() {
    let (a, b) = (TestFile::random(6 * MIB), TestFile::random(6 * MIB));
    // A seller of this run alone: the buckets outlive test runs.
    let seller = format!("crash-{}", uuid::Uuid::now_v7().simple());
    let (app, client, ups) = ready_then_no_worker(&seller, &[&a, &b]).await;
    let ctx = app.job_context().await;
    // Persist and move run by hand here; their queued rows stay with no worker.
    app.expect_unfinished_jobs(4);

    // Killed after the copy, before the version committed.
    let sub_a = submit(&client, "crash-a", &ups[0]).await;
    upload_worker::persist::run(&ctx, SubmissionJob::first(sub_a))
        .await
        .unwrap();
    let owner: upload_domain::SellerId = seller.parse().unwrap();
    ctx.store
        .copy_content(
            &StorageKey::Temp {
                owner: &owner,
                upload: ups[0].upload_id.parse().unwrap(),
            },
            &StorageKey::Content {
                md5: a.md5_hex.parse().unwrap(),
            },
            a.size,
            a.sha256_hex.parse().unwrap(),
            "application/octet-stream",
        )
        .await
        .expect("the copy that happened before the crash");
    assert_eq!(app.count("SELECT count(*) FROM file_versions").await, 0);
    upload_worker::move_file::run(&ctx, SubmissionJob::first(sub_a))
        .await
        .unwrap();
    assert_moved_once(&app, &ups[0], &a).await;

    // Killed after the version committed, before the temp object was deleted.
    let sub_b = submit(&client, "crash-b", &ups[1]).await;
    upload_worker::persist::run(&ctx, SubmissionJob::first(sub_b))
        .await
        .unwrap();
    let mut conn = app.db().await;
    let sub_row = upload_db::submissions::find(&mut conn, sub_b)
        .await
        .unwrap()
        .unwrap();
    let file_row = upload_db::submissions::files_of(&mut conn, sub_b)
        .await
        .unwrap()
        .remove(0);
    drop(conn);
    let by = upload_domain::Actor::job("item.move", 1);
    let version = upload_worker::move_file::place_and_record(&ctx, &sub_row, &file_row, &by)
        .await
        .expect("copy and record");
    assert_eq!(version.version, 1);
    let temp_b = app.temp_key(&ups[1].upload_id).await;
    assert!(
        app.object_bytes(app.temp_bucket(), &temp_b).await.is_some(),
        "the temp object outlives the commit until its delete"
    );
    // Run again, twice: the second run finds nothing to do.
    upload_worker::move_file::run(&ctx, SubmissionJob::first(sub_b))
        .await
        .unwrap();
    upload_worker::move_file::run(&ctx, SubmissionJob::first(sub_b))
        .await
        .unwrap();
    assert_moved_once(&app, &ups[1], &b).await;

    assert_no_orphan(&app, &seller, &[&a, &b]).await;
    for id in [sub_a, sub_b] {
        assert_eq!(
            app.count(&format!(
                "SELECT count(*) FROM item_submissions WHERE id = '{id}' AND state = 'stored'"
            ))
            .await,
            1
        );
        assert_eq!(
            app.count(&format!(
                "SELECT count(*) FROM notifications WHERE submission_id = '{id}' AND kind = '{}'",
                NotificationKind::ItemStored
            ))
            .await,
            1,
            "told once"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn objects_over_the_copy_threshold_are_copied_part_by_part() {
    // Garage copies any size in one CopyObject; AWS refuses over 5 GiB. A 5 MiB
    // threshold sends this 12 MiB file down the UploadPartCopy path.
    let app = TestApp::spawn_with(AppOptions {
        env: vec![
            (
                "UPLOAD_S3_COPY_THRESHOLD_BYTES".into(),
                (5 * MIB).to_string(),
            ),
            ("UPLOAD_S3_COPY_PART_BYTES".into(), (5 * MIB).to_string()),
        ],
        ..AppOptions::on_cluster()
    })
    .await;
    let file = TestFile::random(12 * MIB + 3);
    let (client, up) = app
        .ready_upload("seller-big", &file, "big.bin", "application/octet-stream")
        .await;
    let res = submit_new_item(
        &client,
        "big",
        pb::ItemKind::DigitalFile,
        "Big",
        &up.upload_id,
    )
    .await;
    let item = wait_item(&client, &res.item.unwrap().item_id, WAIT).await;
    assert_eq!(item.state, pb::SubmissionState::Stored as i32, "{item:?}");

    let head = app
        .store
        .head(&StorageKey::Content {
            md5: file.md5_hex.parse().unwrap(),
        })
        .await
        .unwrap()
        .expect("stored");
    // An object assembled from parts has an ETag ending in its part count.
    assert!(head.etag.ends_with("-3"), "{head:?}");
    assert_eq!(
        head.sha256.map(|s| s.to_hex()).as_deref(),
        Some(file.sha256_hex.as_str())
    );
    assert_eq!(head.size, file.size);
    let bytes = app
        .object_bytes(app.regular_bucket(), &format!("files/{}", file.md5_hex))
        .await
        .unwrap();
    assert_eq!(bytes, std::fs::read(&file.path).unwrap());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_store_that_stays_down_fails_the_submission_after_retries_and_keeps_the_temp_object() {
    let file = TestFile::random(MIB);
    let (app, client, ups) = ready_then_no_worker("seller-down", &[&file]).await;
    // The item worker cannot reach the store.
    let _worker = TestApp::spawn_worker_for(
        &app,
        AppOptions {
            worker_env: vec![
                (
                    "UPLOAD_S3_ENDPOINT".into(),
                    format!("http://127.0.0.1:{}", free_port()),
                ),
                ("UPLOAD_JOB_MAX_ATTEMPTS".into(), "3".into()),
                ("UPLOAD_JOB_RETRY_BASE_SECS".into(), "1".into()),
            ],
            ..Default::default()
        },
    )
    .await;
    let sub = submit(&client, "down", &ups[0]).await;
    let item_id = {
        let mut conn = app.db().await;
        upload_db::submissions::find(&mut conn, sub)
            .await
            .unwrap()
            .unwrap()
            .item_id
    };
    let item = wait_item(&client, &item_id.to_string(), WAIT).await;
    assert_eq!(item.state, pb::SubmissionState::Failed as i32, "{item:?}");
    let failure = item.failure.expect("failure");
    assert_eq!(failure.code, FailureCode::MoveFailed.as_str());
    assert!(failure.message.contains("3 attempts"), "{failure:?}");
    // Persisted once; the move tried three times, each attempt later than the last.
    assert_eq!(item.title, "down");
    assert_eq!(
        app.count(&format!(
            "SELECT count(*) FROM apalis.jobs WHERE job_type = 'item.move' AND idempotency_key LIKE '{sub}#%'"
        ))
        .await,
        3
    );
    assert_eq!(
        app.count(&format!(
            "SELECT count(*) FROM apalis.jobs a JOIN apalis.jobs b
               ON b.job_type = a.job_type
              AND b.idempotency_key = '{sub}#' || (split_part(a.idempotency_key, '#', 2)::int + 1)
             WHERE a.job_type = 'item.move' AND a.idempotency_key LIKE '{sub}#%'
               AND b.run_at >= a.run_at + interval '900 milliseconds'"
        ))
        .await,
        2
    );
    // Nothing lost: the temp object is there, the upload is the seller's again,
    // and the seller was told.
    let temp = app.temp_key(&ups[0].upload_id).await;
    assert_eq!(
        app.object_bytes(app.temp_bucket(), &temp).await.unwrap(),
        std::fs::read(&file.path).unwrap()
    );
    let upload = client.get(&ups[0].upload_id).await.unwrap().upload.unwrap();
    assert_eq!(upload.state, pb::UploadState::Ready as i32);
    assert_eq!(
        app.count(&format!(
            "SELECT count(*) FROM notifications WHERE submission_id = '{sub}' AND kind = '{}'",
            NotificationKind::ItemFailed
        ))
        .await,
        1
    );
    assert_eq!(app.count("SELECT count(*) FROM file_versions").await, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_same_content_from_two_sellers_is_one_object_and_two_versions() {
    let app = TestApp::spawn_with(AppOptions::on_cluster()).await;
    let file = TestFile::random(5 * MIB + 17);
    let key = format!("files/{}", file.md5_hex);
    let mut items = Vec::new();
    for seller in ["seller-ann", "seller-bob"] {
        let (client, up) = app
            .ready_upload(seller, &file, "same.bin", "application/octet-stream")
            .await;
        let res = submit_new_item(
            &client,
            "same",
            pb::ItemKind::DigitalFile,
            seller,
            &up.upload_id,
        )
        .await;
        let item = wait_item(&client, &res.item.unwrap().item_id, WAIT).await;
        assert_eq!(item.state, pb::SubmissionState::Stored as i32, "{item:?}");
        items.push(item.item_id);
    }
    assert_ne!(items[0], items[1]);
    assert_eq!(
        app.keys(app.regular_bucket(), &key).await,
        vec![key.clone()]
    );
    assert_eq!(
        app.count(&format!(
            "SELECT count(*) FROM stored_objects WHERE md5_hex = '{}'",
            file.md5_hex
        ))
        .await,
        1
    );
    assert_eq!(
        app.count(&format!(
            "SELECT count(*) FROM file_versions WHERE md5_hex = '{}'",
            file.md5_hex
        ))
        .await,
        2
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_md5_key_holding_other_content_is_refused_and_never_overwritten() {
    let app = TestApp::spawn_with(AppOptions::on_cluster()).await;
    let file = TestFile::random(MIB);
    let (client, up) = app
        .ready_upload(
            "seller-clash",
            &file,
            "mine.bin",
            "application/octet-stream",
        )
        .await;
    // Someone else's bytes already sit at this content's MD5 key.
    let key = format!("files/{}", file.md5_hex);
    let squatter = b"other bytes under the same name".to_vec();
    app.store
        .client()
        .put_object()
        .bucket(app.regular_bucket())
        .key(&key)
        .body(squatter.clone().into())
        .send()
        .await
        .expect("placing the other object");
    let temp = app.temp_key(&up.upload_id).await;

    let res = submit_new_item(
        &client,
        "clash",
        pb::ItemKind::DigitalFile,
        "Clash",
        &up.upload_id,
    )
    .await;
    let item = wait_item(&client, &res.item.unwrap().item_id, WAIT).await;
    assert_eq!(item.state, pb::SubmissionState::Failed as i32, "{item:?}");
    let failure = item.failure.expect("a failure");
    assert_eq!(failure.code, FailureCode::ContentConflict.as_str());
    assert!(
        failure.message.contains("nothing was overwritten"),
        "{failure:?}"
    );
    // Nothing overwritten, nothing lost, nothing recorded.
    assert_eq!(
        app.object_bytes(app.regular_bucket(), &key).await.unwrap(),
        squatter
    );
    assert_eq!(
        app.object_bytes(app.temp_bucket(), &temp).await.unwrap(),
        std::fs::read(&file.path).unwrap()
    );
    assert_eq!(app.count("SELECT count(*) FROM file_versions").await, 0);
    assert_eq!(app.count("SELECT count(*) FROM stored_objects").await, 0);
    // The upload is the seller's again, and they were told.
    let upload = client.get(&up.upload_id).await.unwrap().upload.unwrap();
    assert_eq!(upload.state, pb::UploadState::Ready as i32);
    assert_eq!(
        app.count(&format!(
            "SELECT count(*) FROM notifications WHERE kind = '{}'
               AND details->>'code' = '{}'",
            NotificationKind::ItemFailed,
            FailureCode::ContentConflict
        ))
        .await,
        1
    );
}
