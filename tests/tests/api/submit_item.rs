//! SubmitItem: answered at once and stored in the background; updates become new
//! versions; one idempotency key is one submission; nothing unready or unclean is
//! taken, and a refusal writes nothing.

use crate::only_file;
use upload_domain::NotificationKind;
use upload_e2e::{
    EICAR, MIB, TestApp, TestFile, WAIT, pb, submission, submit_new_item, submit_version, wait_item,
};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn submit_stores_the_file_at_its_md5_and_a_changed_file_becomes_version_2() {
    let app = TestApp::spawn().await;
    let first = TestFile::random_zip(6 * MIB);
    let (client, up1) = app
        .ready_upload(
            "seller-items",
            &first,
            "pack v1.zip",
            "application/octet-stream",
        )
        .await;
    let temp1 = app.temp_key(&up1.upload_id).await;

    let submitted = submit_new_item(
        &client,
        "first",
        pb::ItemKind::DigitalFile,
        "Font pack",
        &up1.upload_id,
    )
    .await;
    // Answered at once, with the item as it is then: queued, or already being
    // saved by a worker that took the job between the commit and the answer's
    // read (seen once in CI).
    let queued = submitted.item.expect("item");
    assert!(
        [
            pb::SubmissionState::Queued as i32,
            pb::SubmissionState::Persisted as i32
        ]
        .contains(&queued.state),
        "{queued:?}"
    );
    let item_id = queued.item_id.clone();

    let item = wait_item(&client, &item_id, WAIT).await;
    assert_eq!(item.state, pb::SubmissionState::Stored as i32, "{item:?}");
    assert_eq!(
        (item.title.as_str(), item.description.as_str()),
        ("Font pack", "Font pack, described")
    );
    let v1 = only_file(&item).current.clone().expect("a current version");
    assert_eq!(v1.version, 1);
    assert_eq!(
        (v1.md5_hex.as_str(), v1.sha256_hex.as_str()),
        (first.md5_hex.as_str(), first.sha256_hex.as_str())
    );
    assert_eq!(
        (v1.size_bytes, v1.file_name.as_str()),
        (first.size, "pack v1.zip")
    );
    let file_id = v1.file_id.clone();
    // The content is at its MD5 key, byte for byte; the temp object is gone.
    let stored = app
        .object_bytes(app.regular_bucket(), &format!("files/{}", first.md5_hex))
        .await
        .expect("object at the MD5 key");
    assert_eq!(stored, std::fs::read(&first.path).unwrap());
    assert!(app.object_bytes(app.temp_bucket(), &temp1).await.is_none());
    let upload = client.get(&up1.upload_id).await.unwrap().upload.unwrap();
    assert_eq!(upload.state, pb::UploadState::Stored as i32);

    // A changed file becomes version 2 of the same file, and current.
    let second = TestFile::random_zip(6 * MIB);
    let (_, up2) = app
        .ready_upload(
            "seller-items",
            &second,
            "pack v2.zip",
            "application/octet-stream",
        )
        .await;
    let item = submit_version(&client, "second", &item_id, &file_id, &up2.upload_id).await;
    assert_eq!(item.state, pb::SubmissionState::Stored as i32, "{item:?}");
    let file = only_file(&item);
    assert_eq!(
        (file.version_count, file.current.as_ref().unwrap().version),
        (2, 2)
    );

    // The seller was told twice, once per submission.
    assert_eq!(
        app.count(&format!(
            "SELECT count(*) FROM notifications WHERE kind = '{}'",
            NotificationKind::ItemStored
        ))
        .await,
        2
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn five_submissions_in_a_row_without_waiting_all_complete() {
    let app = TestApp::spawn().await;
    let mut uploads = Vec::new();
    for seed in 0..5 {
        let file = TestFile::random(MIB + seed * 1000);
        let (client, up) = app
            .ready_upload(
                "seller-rush",
                &file,
                &format!("item-{seed}.bin"),
                "application/octet-stream",
            )
            .await;
        uploads.push((client, up, file));
    }
    let client = &uploads[0].0;
    let mut items = Vec::new();
    for (i, (_, up, _)) in uploads.iter().enumerate() {
        let res = submit_new_item(
            client,
            &format!("rush-{i}"),
            pb::ItemKind::DigitalFile,
            &format!("Item {i}"),
            &up.upload_id,
        )
        .await;
        items.push(res.item.unwrap().item_id);
    }
    for (item_id, (_, _, file)) in items.iter().zip(&uploads) {
        let item = wait_item(client, item_id, WAIT).await;
        assert_eq!(item.state, pb::SubmissionState::Stored as i32, "{item:?}");
        assert_eq!(
            only_file(&item).current.as_ref().unwrap().md5_hex,
            file.md5_hex
        );
    }
    assert_eq!(app.count("SELECT count(*) FROM file_versions").await, 5);
    for (_, _, file) in &uploads {
        let key = format!("files/{}", file.md5_hex);
        assert_eq!(app.keys(app.regular_bucket(), &key).await, vec![key]);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_quarantined_upload_cannot_be_submitted_and_nothing_is_written() {
    let app = TestApp::spawn().await;
    let file = TestFile::from_bytes("eicar.txt", EICAR);
    let (client, up) = app
        .upload_whole("seller-bad", &file, "eicar.txt", "application/octet-stream")
        .await;
    let settled = app.wait_settled(&client, &up.upload_id, WAIT).await;
    assert_eq!(settled.state, pb::UploadState::Quarantined as i32);

    let refused = client
        .items()
        .submit_item(submission(
            "bad",
            "",
            pb::ItemKind::DigitalFile,
            "Bad",
            &[(&up.upload_id, "")],
        ))
        .await
        .expect_err("refused");
    assert_eq!(refused.code(), tonic::Code::FailedPrecondition);
    assert!(
        refused.message().contains("malware"),
        "{}",
        refused.message()
    );
    for table in [
        "items",
        "item_submissions",
        "item_files",
        "submission_files",
    ] {
        assert_eq!(
            app.count(&format!("SELECT count(*) FROM {table}")).await,
            0,
            "{table}"
        );
    }
    assert_eq!(
        app.count("SELECT count(*) FROM apalis.jobs WHERE job_type LIKE 'item.%'")
            .await,
        0
    );
    let upload = client.get(&up.upload_id).await.unwrap().upload.unwrap();
    assert_eq!(upload.state, pb::UploadState::Quarantined as i32);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_idempotency_key_is_one_submission_and_bad_submissions_change_nothing() {
    let app = TestApp::spawn().await;
    let file = TestFile::random(MIB);
    let (client, up) = app
        .ready_upload("seller-keys", &file, "a.bin", "application/octet-stream")
        .await;
    let (other_client, other) = app
        .ready_upload(
            "seller-else",
            &TestFile::random(MIB),
            "b.bin",
            "application/octet-stream",
        )
        .await;
    let _ = other_client;
    let good = submission(
        "key-1",
        "",
        pb::ItemKind::DigitalFile,
        "Keyed",
        &[(&up.upload_id, "")],
    );

    // Bad input: a clear status, and nothing written.
    let mut cases: Vec<(pb::SubmitItemRequest, tonic::Code, &str)> = vec![
        (
            pb::SubmitItemRequest {
                idempotency_key: String::new(),
                ..good.clone()
            },
            tonic::Code::InvalidArgument,
            "idempotency_key",
        ),
        (
            pb::SubmitItemRequest {
                kind: 0,
                ..good.clone()
            },
            tonic::Code::InvalidArgument,
            "kind",
        ),
        (
            pb::SubmitItemRequest {
                title: "  ".into(),
                ..good.clone()
            },
            tonic::Code::InvalidArgument,
            "title",
        ),
        (
            pb::SubmitItemRequest {
                files: Vec::new(),
                ..good.clone()
            },
            tonic::Code::InvalidArgument,
            "at least one file",
        ),
        (
            submission(
                "k",
                "",
                pb::ItemKind::DigitalFile,
                "x",
                &[(&other.upload_id, "")],
            ),
            tonic::Code::NotFound,
            "not found",
        ),
        (
            submission("k", "", pb::ItemKind::Video, "x", &[(&up.upload_id, "")]),
            tonic::Code::InvalidArgument,
            "not a video",
        ),
        (
            submission(
                "k",
                "",
                pb::ItemKind::DigitalFile,
                "x",
                &[(&up.upload_id, "0190a1b2-0000-7000-8000-000000000000")],
            ),
            tonic::Code::InvalidArgument,
            "not a file of this item",
        ),
    ];
    cases.push((
        submission(
            "k",
            "0190a1b2-0000-7000-8000-000000000001",
            pb::ItemKind::DigitalFile,
            "x",
            &[(&up.upload_id, "")],
        ),
        tonic::Code::NotFound,
        "item",
    ));
    for (req, expected, says) in cases {
        let err = client
            .items()
            .submit_item(req.clone())
            .await
            .expect_err("refused");
        assert_eq!(err.code(), expected, "{req:?}: {}", err.message());
        assert!(err.message().contains(says), "{req:?}: {}", err.message());
    }
    assert_eq!(app.count("SELECT count(*) FROM item_submissions").await, 0);
    assert_eq!(
        app.count("SELECT count(*) FROM uploads WHERE state <> 'ready'")
            .await,
        0,
        "no upload was taken"
    );

    // The same key twice, even at once: one item, one submission, one job.
    let (mut first, mut second) = (client.items(), client.items());
    let (a, b) = tokio::join!(
        first.submit_item(good.clone()),
        second.submit_item(good.clone())
    );
    let (a, b) = (a.unwrap().into_inner(), b.unwrap().into_inner());
    assert_eq!(a.submission_id, b.submission_id);
    assert_eq!(a.item.unwrap().item_id, b.item.unwrap().item_id);
    let again = client
        .items()
        .submit_item(good.clone())
        .await
        .unwrap()
        .into_inner();
    assert_eq!(again.submission_id, a.submission_id);
    assert_eq!(app.count("SELECT count(*) FROM items").await, 1);
    assert_eq!(app.count("SELECT count(*) FROM item_submissions").await, 1);
    // The key reused for a different request is refused.
    let reused = client
        .items()
        .submit_item(pb::SubmitItemRequest {
            title: "Something else".into(),
            ..good
        })
        .await
        .expect_err("refused");
    assert_eq!(reused.code(), tonic::Code::AlreadyExists);
    assert!(reused.message().contains("key-1"), "{}", reused.message());
    // The upload is taken: submitting it again elsewhere says why.
    let taken = client
        .items()
        .submit_item(submission(
            "key-2",
            "",
            pb::ItemKind::DigitalFile,
            "Again",
            &[(&up.upload_id, "")],
        ))
        .await
        .expect_err("refused");
    assert_eq!(taken.code(), tonic::Code::FailedPrecondition);
}
