//! SubmitItem and what follows on the real stack: the item is saved, its file lands
//! at its MD5 key in the regular bucket as a new version, the temp object goes, and
//! every version downloads with its own bytes, for the owner and granted users only.

use std::time::Duration;

use upload_e2e::{
    EICAR, TestApp, TestFile, code, fetch, pb, submission, submit_new_item, wait_item,
};

const MIB: u64 = 1024 * 1024;
const WAIT: Duration = Duration::from_secs(60);

fn only_file(item: &pb::Item) -> &pb::ItemFile {
    assert_eq!(item.files.len(), 1, "{item:?}");
    &item.files[0]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn submit_stores_the_file_at_its_md5_and_a_changed_file_becomes_version_2() {
    let app = TestApp::spawn().await;
    let first = TestFile::random(6 * MIB, 41);
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
    // Answered at once: queued, nothing stored yet.
    let queued = submitted.item.expect("item");
    assert_eq!(queued.state, pb::SubmissionState::Queued as i32);
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
    let second = TestFile::random(6 * MIB, 42);
    let (_, up2) = app
        .ready_upload(
            "seller-items",
            &second,
            "pack v2.zip",
            "application/octet-stream",
        )
        .await;
    client
        .items()
        .submit_item(submission(
            "second",
            &item_id,
            pb::ItemKind::DigitalFile,
            "Font pack",
            &[(&up2.upload_id, &file_id)],
        ))
        .await
        .expect("SubmitItem update");
    let item = wait_item(&client, &item_id, WAIT).await;
    assert_eq!(item.state, pb::SubmissionState::Stored as i32, "{item:?}");
    let file = only_file(&item);
    assert_eq!(
        (file.version_count, file.current.as_ref().unwrap().version),
        (2, 2)
    );

    let versions = client
        .items()
        .list_versions(pb::ListVersionsRequest {
            item_id: item_id.clone(),
            file_id: String::new(),
        })
        .await
        .unwrap()
        .into_inner()
        .versions;
    let listed: Vec<(u32, &str, bool)> = versions
        .iter()
        .map(|v| (v.version, v.md5_hex.as_str(), v.current))
        .collect();
    assert_eq!(
        listed,
        vec![
            (2, second.md5_hex.as_str(), true),
            (1, first.md5_hex.as_str(), false)
        ]
    );

    // Both versions download with their own bytes, named as the seller named them.
    for (version, file, name) in [(1, &first, "pack v1.zip"), (2, &second, "pack v2.zip")] {
        let link = client
            .items()
            .get_download_url(pb::GetDownloadUrlRequest {
                item_id: item_id.clone(),
                file_id: file_id.clone(),
                version,
            })
            .await
            .expect("GetDownloadUrl")
            .into_inner();
        let got = fetch(&link.url).await;
        assert_eq!(got.status, 200);
        assert_eq!(
            got.body,
            std::fs::read(&file.path).unwrap(),
            "version {version}"
        );
        let disposition = got.disposition.expect("a download name");
        assert!(
            disposition.contains(&name.replace(' ', "%20")),
            "{disposition}"
        );
        let expires = link.expires_at.expect("expiry").seconds;
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs() as i64;
        assert!(
            expires > now && expires <= now + 301,
            "short expiry: {}",
            expires - now
        );
    }

    // An older version can be made current again.
    let file = client
        .items()
        .set_current_version(pb::SetCurrentVersionRequest {
            item_id: item_id.clone(),
            file_id: file_id.clone(),
            version: 1,
        })
        .await
        .expect("SetCurrentVersion")
        .into_inner()
        .file
        .unwrap();
    assert_eq!(file.current.unwrap().md5_hex, first.md5_hex);
    let current = client
        .items()
        .get_download_url(pb::GetDownloadUrlRequest {
            item_id: item_id.clone(),
            file_id: file_id.clone(),
            version: 0,
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(current.version.unwrap().version, 1);
    assert_eq!(
        code(
            client
                .items()
                .set_current_version(pb::SetCurrentVersionRequest {
                    item_id: item_id.clone(),
                    file_id: file_id.clone(),
                    version: 3,
                })
                .await
        ),
        tonic::Code::NotFound,
        "a version that does not exist is not found"
    );

    // The seller was told twice, once per submission.
    assert_eq!(
        app.count("SELECT count(*) FROM notifications WHERE kind = 'item.stored'")
            .await,
        2
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn five_submissions_in_a_row_without_waiting_all_complete() {
    let app = TestApp::spawn().await;
    let mut uploads = Vec::new();
    for seed in 0..5 {
        let file = TestFile::random(MIB + seed * 1000, 500 + seed);
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
async fn the_same_content_from_two_sellers_is_one_object_and_two_versions() {
    let app = TestApp::spawn().await;
    let file = TestFile::random(5 * MIB + 17, 77);
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
    let app = TestApp::spawn().await;
    let file = TestFile::random(MIB, 88);
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
    assert_eq!(failure.code, "content_conflict");
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
        app.count(
            "SELECT count(*) FROM notifications WHERE kind = 'item.failed'
               AND details->>'code' = 'content_conflict'"
        )
        .await,
        1
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn other_sellers_cannot_list_or_download_and_granted_users_can() {
    let app = TestApp::spawn().await;
    let file = TestFile::random(MIB, 99);
    let (owner, up) = app
        .ready_upload(
            "seller-own",
            &file,
            "secret.bin",
            "application/octet-stream",
        )
        .await;
    let res = submit_new_item(
        &owner,
        "own",
        pb::ItemKind::DigitalFile,
        "Mine",
        &up.upload_id,
    )
    .await;
    let item = wait_item(&owner, &res.item.unwrap().item_id, WAIT).await;
    let item_id = item.item_id.clone();
    let file_id = only_file(&item).file_id.clone();
    let list = pb::ListVersionsRequest {
        item_id: item_id.clone(),
        file_id: String::new(),
    };
    let download = pb::GetDownloadUrlRequest {
        item_id: item_id.clone(),
        file_id: file_id.clone(),
        version: 1,
    };

    let buyer = app.user("buyer-1").await;
    assert_eq!(
        code(buyer.items().list_versions(list.clone()).await),
        tonic::Code::NotFound
    );
    assert_eq!(
        code(buyer.items().get_download_url(download.clone()).await),
        tonic::Code::NotFound
    );
    assert_eq!(
        code(
            buyer
                .items()
                .get_item(pb::GetItemRequest {
                    item_id: item_id.clone()
                })
                .await
        ),
        tonic::Code::NotFound
    );
    // Not the owner: cannot grant itself access either.
    assert_eq!(
        code(
            buyer
                .items()
                .grant_access(pb::GrantAccessRequest {
                    item_id: item_id.clone(),
                    user_id: "buyer-1".into(),
                })
                .await
        ),
        tonic::Code::NotFound
    );

    owner
        .items()
        .grant_access(pb::GrantAccessRequest {
            item_id: item_id.clone(),
            user_id: "buyer-1".into(),
        })
        .await
        .expect("GrantAccess");
    let versions = buyer
        .items()
        .list_versions(list.clone())
        .await
        .unwrap()
        .into_inner();
    assert_eq!(versions.versions.len(), 1);
    let link = buyer
        .items()
        .get_download_url(download.clone())
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        fetch(&link.url).await.body,
        std::fs::read(&file.path).unwrap()
    );
    // Granted to read, not to change.
    assert_eq!(
        code(
            buyer
                .items()
                .set_current_version(pb::SetCurrentVersionRequest {
                    item_id: item_id.clone(),
                    file_id: file_id.clone(),
                    version: 1,
                })
                .await
        ),
        tonic::Code::PermissionDenied
    );
    // Another user is still refused.
    let stranger = app.user("seller-other").await;
    assert_eq!(
        code(stranger.items().get_download_url(download.clone()).await),
        tonic::Code::NotFound
    );

    owner
        .items()
        .revoke_access(pb::RevokeAccessRequest {
            item_id: item_id.clone(),
            user_id: "buyer-1".into(),
        })
        .await
        .expect("RevokeAccess");
    assert_eq!(
        code(buyer.items().list_versions(list).await),
        tonic::Code::NotFound
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_quarantined_upload_cannot_be_submitted_and_nothing_is_written() {
    let app = TestApp::spawn().await;
    let file = TestFile::from_bytes("eicar.com", EICAR);
    let (client, up) = app
        .upload_whole("seller-bad", &file, "eicar.com", "application/octet-stream")
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
    let file = TestFile::random(MIB, 7);
    let (client, up) = app
        .ready_upload("seller-keys", &file, "a.bin", "application/octet-stream")
        .await;
    let (other_client, other) = app
        .ready_upload(
            "seller-else",
            &TestFile::random(MIB, 8),
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_video_item_moves_its_previews_with_the_file_and_can_be_watched() {
    use futures::StreamExt;
    let app = TestApp::spawn().await;
    let video = TestFile::video(3, 320, 240);
    let (client, up) = app
        .ready_upload("seller-video", &video, "clip.mp4", "video/mp4")
        .await;
    assert!(!up.previews.is_empty(), "{up:?}");

    let res = submit_new_item(
        &client,
        "video",
        pb::ItemKind::Video,
        "A short film",
        &up.upload_id,
    )
    .await;
    let item_id = res.item.unwrap().item_id;
    let mut watch = client
        .items()
        .watch_item(pb::WatchItemRequest {
            item_id: item_id.clone(),
        })
        .await
        .expect("WatchItem")
        .into_inner();
    let mut states = Vec::new();
    while let Some(update) = tokio::time::timeout(WAIT, watch.next())
        .await
        .expect("the stream moves on")
    {
        states.push(update.expect("update").item.unwrap().state);
    }
    assert_eq!(
        states.last(),
        Some(&(pb::SubmissionState::Stored as i32)),
        "{states:?}"
    );
    assert!(
        states.windows(2).all(|w| w[0] <= w[1]),
        "never backwards: {states:?}"
    );

    // The previews live beside the stored file now, and still load.
    let stored = client.get(&up.upload_id).await.unwrap().upload.unwrap();
    assert_eq!(stored.state, pb::UploadState::Stored as i32);
    let md5 = &stored.metadata.as_ref().unwrap().md5_hex;
    assert_eq!(stored.previews.len(), up.previews.len());
    for p in &stored.previews {
        let key = format!("previews/{md5}/{}", p.name);
        let bytes = app
            .object_bytes(app.regular_bucket(), &key)
            .await
            .unwrap_or_else(|| panic!("{key} in the regular bucket"));
        assert_eq!(fetch(&p.url).await.body, bytes, "{}", p.name);
    }
    assert_eq!(
        app.keys(app.temp_bucket(), &format!("previews/{}/", up.upload_id))
            .await,
        Vec::<String>::new()
    );
}
