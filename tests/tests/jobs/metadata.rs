//! The metadata job, with the real ffprobe: a video's container, duration, codecs,
//! dimensions, frame and bit rate; a file that is not media skips the stage and
//! says why.

use upload_e2e::{MIB, TestApp, TestFile, WAIT, pb};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_video_gets_its_media_facts() {
    let app = TestApp::spawn().await;
    let video = TestFile::video(4, 640, 360);
    let (_, ready) = app
        .ready_upload("seller-probe", &video, "trailer.mp4", "video/mp4")
        .await;
    let media = ready.media.clone().expect("media facts");
    assert!(media.container.contains("mp4"), "{media:?}");
    assert_eq!((media.width, media.height), (640, 360));
    assert!((3900..=4100).contains(&media.duration_ms), "{media:?}");
    assert_eq!(media.video_codec, "h264");
    assert_eq!(media.audio_codec, "aac");
    assert_eq!(media.frame_rate, 25.0);
    assert!(media.bit_rate > 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_file_that_is_not_media_skips_the_stage_and_says_why() {
    let app = TestApp::spawn().await;
    let file = TestFile::random(MIB);
    let (client, up) = app
        .upload_whole(
            "seller-plain",
            &file,
            "data.bin",
            "application/octet-stream",
        )
        .await;
    let ready = app.wait_settled(&client, &up.upload_id, WAIT).await;
    assert_eq!(ready.state, pb::UploadState::Ready as i32, "{ready:?}");
    assert!(ready.media.is_none());
    let stages = client.get(&up.upload_id).await.unwrap().stages;
    let metadata = stages
        .iter()
        .find(|s| s.stage == pb::Stage::Metadata as i32)
        .expect("a metadata stage");
    assert_eq!(metadata.status, pb::StageStatus::Skipped as i32);
    assert!(
        metadata.detail.contains("application/octet-stream"),
        "{metadata:?}"
    );
}
