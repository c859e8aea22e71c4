//! WatchProgress: any replica serves any upload, because changes travel through
//! PostgreSQL, not through the process that made them.

use futures::StreamExt;
use std::time::Duration;
use upload_domain::SellerGroup;
use upload_e2e::{MIB, TestApp, TestFile, pb};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replica_that_did_none_of_the_work_streams_the_progress() {
    let app = TestApp::spawn().await;
    let (replica, _replica) = TestApp::spawn_replica(&app).await;
    let file = TestFile::random(40 * MIB);

    // Everything happens through the first server...
    let (client, upload) = app.upload_parts("seller-replica", &file, None).await;
    // ...while the seller watches through the second one.
    let token = app.token("seller-replica", SellerGroup::Standard);
    let watcher = app.connect_to(&replica, &token).await;
    let mut stream = watcher.watch(&upload.upload_id).await.unwrap();
    let first = stream.next().await.unwrap().unwrap();
    assert_eq!(
        first.upload.unwrap().state,
        pb::UploadState::Uploading as i32
    );

    client.complete(&upload.upload_id).await.unwrap();
    let mut states = Vec::new();
    let mut last = None;
    let collect = async {
        while let Some(update) = stream.next().await {
            let update = update.unwrap();
            states.push(update.upload.as_ref().unwrap().state);
            last = update.upload;
        }
    };
    tokio::time::timeout(Duration::from_secs(60), collect)
        .await
        .expect("stream ended");
    let last = last.unwrap();
    assert_eq!(
        last.state,
        pb::UploadState::Ready as i32,
        "states seen: {states:?}"
    );
    assert_eq!(last.metadata.unwrap().md5_hex, file.md5_hex);
    assert!(
        states.contains(&(pb::UploadState::Uploaded as i32))
            || states.contains(&(pb::UploadState::Processing as i32))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watching_a_settled_upload_sends_one_update_and_ends() {
    let app = TestApp::spawn().await;
    let file = TestFile::random(MIB);
    let (client, upload) = app.upload_parts("seller-settled", &file, None).await;
    client.complete(&upload.upload_id).await.unwrap();
    app.wait_settled(&client, &upload.upload_id, Duration::from_secs(30))
        .await;

    let updates: Vec<_> = client
        .watch(&upload.upload_id)
        .await
        .unwrap()
        .collect()
        .await;
    assert_eq!(updates.len(), 1);
    let only = updates.into_iter().next().unwrap().unwrap();
    assert_eq!(only.upload.unwrap().state, pb::UploadState::Ready as i32);
    assert!(
        only.stages
            .iter()
            .any(|s| s.stage == pb::Stage::Hash as i32 && s.status == pb::StageStatus::Done as i32)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_watch_ends_when_its_token_expires_and_one_with_time_left_stays_open() {
    let app = TestApp::spawn_with(upload_e2e::AppOptions {
        worker: false,
        ..Default::default()
    })
    .await;
    let owner = app.client("seller-short", SellerGroup::Standard).await;
    let upload = owner
        .create("idle.bin", 20 * MIB, "application/octet-stream", None)
        .await
        .expect("CreateUpload");
    // A token with three seconds left: the watch opens, then ends with its token.
    let seller: upload_domain::SellerId = "seller-short".parse().unwrap();
    let short = app
        .keys
        .mint(&seller, SellerGroup::Standard, Duration::from_secs(3))
        .unwrap();
    let watcher = app.connect(&short).await;
    let mut stream = watcher.watch(&upload.upload_id).await.expect("watch opens");
    let first = stream.next().await.expect("an update").expect("the upload");
    assert_eq!(first.upload.unwrap().upload_id, upload.upload_id);
    let end = tokio::time::timeout(Duration::from_secs(15), stream.next())
        .await
        .expect("the stream ends with its token")
        .expect("an ending status");
    let status = end.expect_err("UNAUTHENTICATED, not an update");
    assert_eq!(status.code(), tonic::Code::Unauthenticated, "{status:?}");
    assert!(status.message().contains("expired"), "{}", status.message());
    assert!(stream.next().await.is_none(), "nothing after the end");

    // The control: an hour's token keeps the same idle watch open past that point.
    let mut long = owner.watch(&upload.upload_id).await.expect("watch opens");
    long.next().await.expect("an update").expect("the upload");
    assert!(
        tokio::time::timeout(Duration::from_secs(5), long.next())
            .await
            .is_err(),
        "an idle watch with a valid token stays open"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_caller_holds_only_so_many_watches_at_once() {
    let app = TestApp::spawn_with(upload_e2e::AppOptions {
        worker: false,
        env: vec![("UPLOAD_MAX_WATCHES".into(), "2".into())],
        ..Default::default()
    })
    .await;
    let (client, upload) = app
        .upload_parts("seller-watcher", &TestFile::random(6 * MIB), Some(&[1]))
        .await;
    let first = client.watch(&upload.upload_id).await.expect("first watch");
    let _second = client.watch(&upload.upload_id).await.expect("second watch");
    let refused = client
        .watch(&upload.upload_id)
        .await
        .expect_err("a third watch at once");
    let status = match refused {
        upload_client::ClientError::Rpc(status) => status,
        other => panic!("{other}"),
    };
    assert_eq!(status.code(), tonic::Code::ResourceExhausted);
    use tonic_types::StatusExt;
    let details = status.get_error_details();
    assert_eq!(
        details.error_info().map(|i| i.reason.as_str()),
        Some(upload_domain::Refusal::TooManyWatches.as_str())
    );
    assert!(details.retry_info().and_then(|r| r.retry_delay).is_some());
    // Another seller is not counted against this one.
    let (other, theirs) = app
        .upload_parts(
            "seller-other-watcher",
            &TestFile::random(6 * MIB),
            Some(&[1]),
        )
        .await;
    other
        .watch(&theirs.upload_id)
        .await
        .expect("another seller");
    // A closed stream frees its slot.
    drop(first);
    upload_e2e::poll_until("a freed watch slot", Duration::from_secs(10), || async {
        let again = client.watch(&upload.upload_id).await;
        (again.is_ok(), again.is_ok())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watchers_of_one_upload_share_one_feed_and_strangers_start_none() {
    let app = TestApp::spawn().await;
    let file = TestFile::random(12 * MIB);
    let (client, upload) = app.upload_parts("seller-shared", &file, Some(&[1])).await;
    let feeds = || async {
        upload_e2e::scrape(&app.server_metrics_url)
            .await
            .value("upload_watch_feeds", &[])
    };
    // Another seller's watches are refused before anything starts for them.
    let stranger = app.client("seller-stranger", SellerGroup::Standard).await;
    for _ in 0..5 {
        match stranger.watch(&upload.upload_id).await {
            Err(upload_client::ClientError::Rpc(status)) => {
                assert_eq!(status.code(), tonic::Code::NotFound, "{status:?}")
            }
            other => panic!("a stranger watched: {:?}", other.map(|_| ())),
        }
    }
    assert_eq!(feeds().await, 0.0, "no feed for a stranger");
    // Twenty watchers of the owner's upload: one feed, and each gets the snapshot.
    let mut streams = Vec::new();
    for _ in 0..20 {
        let mut stream = client.watch(&upload.upload_id).await.unwrap();
        let first = stream.next().await.unwrap().unwrap();
        assert_eq!(first.upload.unwrap().upload_id, upload.upload_id);
        streams.push(stream);
    }
    assert_eq!(feeds().await, 1.0, "one feed for twenty watchers");
    // The rest is sent and completed: every watcher follows it to its end.
    client
        .send_parts(&upload, &file.path, &[2, 3], Default::default(), |_, _| {})
        .await
        .unwrap();
    client.complete(&upload.upload_id).await.unwrap();
    for mut stream in streams {
        let mut last = None;
        let follow = async {
            while let Some(update) = stream.next().await {
                last = update.unwrap().upload;
            }
        };
        tokio::time::timeout(Duration::from_secs(60), follow)
            .await
            .expect("each stream ends when the upload settles");
        assert_eq!(last.map(|u| u.state), Some(pb::UploadState::Ready as i32));
    }
    upload_e2e::poll_until("the feed to stop", Duration::from_secs(10), || async {
        let open = feeds().await;
        (open == 0.0, open)
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_feed_signs_its_preview_urls_again_before_half_their_time() {
    let app = TestApp::spawn_with(upload_e2e::AppOptions {
        worker: false,
        env: vec![("UPLOAD_SIGN_EXPIRY_SECS".into(), "2".into())],
        ..Default::default()
    })
    .await;
    let file = TestFile::random(12 * MIB);
    let (client, upload) = app.upload_parts("seller-resign", &file, Some(&[1])).await;
    // A preview beside an upload still taking parts, so its feed runs on.
    app.execute(&format!(
        "INSERT INTO upload_previews (upload_id, name, kind, content_type, object_key, width, height, size_bytes) \
         VALUES ('{}', 'thumb.jpg', 'thumbnail', 'image/jpeg', 'previews/{}/thumb.jpg', 8, 8, 100)",
        upload.upload_id, upload.upload_id
    ))
    .await;
    let url = |update: pb::WatchProgressResponse| {
        let upload = update.upload.unwrap();
        assert_eq!(upload.state, pb::UploadState::Uploading as i32);
        upload.previews[0].url.clone()
    };
    let mut stream = client.watch(&upload.upload_id).await.unwrap();
    let first = url(stream.next().await.unwrap().unwrap());
    // Nothing changes but the time: a later snapshot carries a newer signature
    // (snapshots sent meanwhile for the parts' progress may carry the first one,
    // signed within the same second).
    let resigned = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            let next = url(stream.next().await.unwrap().unwrap());
            if next != first {
                return next;
            }
        }
    })
    .await
    .expect("the feed reads again within half the URLs' 2 s");
    let object = |url: &str| url.split_once('?').map(|(path, _)| path.to_owned());
    assert_eq!(
        object(&resigned),
        object(&first),
        "the same preview, signed again"
    );
}
