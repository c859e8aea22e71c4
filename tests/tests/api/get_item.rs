//! GetItem: the item's fields, kind and files with their current version, and its
//! latest submission's state; an item that does not exist, or is someone else's,
//! is not found.

use upload_client::UploadClient;
use upload_domain::SellerGroup;
use upload_e2e::{AppOptions, MIB, TestApp, TestFile, WAIT, code, pb, submit_new_item, wait_item};

/// A ready 1 MiB upload of `seller`'s, submitted under `key` as a new digital-file
/// item "Fonts".
async fn fonts_submitted(
    app: &TestApp,
    seller: &str,
    key: &str,
) -> (UploadClient, TestFile, pb::Upload, pb::SubmitItemResponse) {
    let file = TestFile::random(MIB);
    let (client, up) = app
        .ready_upload(seller, &file, "fonts.bin", "application/octet-stream")
        .await;
    let res = submit_new_item(
        &client,
        key,
        pb::ItemKind::DigitalFile,
        "Fonts",
        &up.upload_id,
    )
    .await;
    (client, file, up, res)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_item_shows_its_fields_files_and_latest_submission() {
    let app = TestApp::spawn().await;
    let (client, file, up, res) = fonts_submitted(&app, "seller-item", "get").await;
    let item_id = res.item.unwrap().item_id;
    wait_item(&client, &item_id, WAIT).await;

    let item = client
        .items()
        .get_item(pb::GetItemRequest {
            item_id: item_id.clone(),
        })
        .await
        .expect("GetItem")
        .into_inner()
        .item
        .unwrap();
    assert_eq!(item.item_id, item_id);
    assert_eq!(item.kind, pb::ItemKind::DigitalFile as i32);
    assert_eq!(
        (item.title.as_str(), item.description.as_str()),
        ("Fonts", "Fonts, described")
    );
    assert_eq!(item.state, pb::SubmissionState::Stored as i32);
    assert_eq!(item.submission_id, res.submission_id);
    assert!(item.failure.is_none());
    assert_eq!(item.files.len(), 1);
    let current = item.files[0].current.as_ref().expect("current version");
    assert_eq!(
        (
            current.version,
            current.md5_hex.as_str(),
            current.upload_id.as_str()
        ),
        (1, file.md5_hex.as_str(), up.upload_id.as_str())
    );

    let stranger = app.client("seller-stranger", SellerGroup::Standard).await;
    for (caller, id) in [
        (&stranger, item_id.clone()),
        (&client, upload_domain::ItemId::new().to_string()),
    ] {
        let got = caller
            .items()
            .get_item(pb::GetItemRequest { item_id: id })
            .await;
        assert_eq!(code(got), tonic::Code::NotFound);
    }
    let bad = client
        .items()
        .get_item(pb::GetItemRequest {
            item_id: "not-an-id".into(),
        })
        .await;
    assert_eq!(code(bad), tonic::Code::InvalidArgument);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_item_submitted_but_not_yet_saved_answers_with_its_queued_submission() {
    // No worker runs item.persist: the submission stays queued, its job unfinished.
    let app = TestApp::spawn_with(AppOptions {
        worker_env: vec![(
            "UPLOAD_WORKER_QUEUES".into(),
            "scan,metadata,preview,notify".into(),
        )],
        ..Default::default()
    })
    .await;
    app.expect_unfinished_jobs(1);
    let (client, _, _, res) = fonts_submitted(&app, "seller-queued", "queued").await;
    let item_id = res.item.unwrap().item_id;
    let item = client
        .items()
        .get_item(pb::GetItemRequest {
            item_id: item_id.clone(),
        })
        .await
        .expect("GetItem answers an item whose submission is not saved yet")
        .into_inner()
        .item
        .unwrap();
    assert_eq!(
        (item.state, item.submission_id.as_str()),
        (
            pb::SubmissionState::Queued as i32,
            res.submission_id.as_str()
        )
    );
    assert_eq!(item.files.len(), 1);
    assert!(item.files[0].current.is_none(), "no version stored yet");
    let mut watch = client
        .items()
        .watch_item(pb::WatchItemRequest { item_id })
        .await
        .expect("WatchItem answers it too")
        .into_inner();
    let first = watch.message().await.unwrap().unwrap().item.unwrap();
    assert_eq!(first.state, pb::SubmissionState::Queued as i32);
}
