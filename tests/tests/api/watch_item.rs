//! WatchItem: the item's submission followed to stored, never backwards; the
//! video's previews moved beside the stored file.

use upload_e2e::{TestApp, TestFile, WAIT, fetch, pb, submit_new_item};

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
