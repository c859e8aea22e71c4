//! The preview job, with the real ffmpeg: a poster and a short clip for videos,
//! thumbnails of the configured sizes for images, each stored under its own key.

use std::time::Duration;
use upload_e2e::{AppOptions, MediaSandbox, SANDBOX_UID, TestApp, TestFile, decodes, pb, probe};

async fn stored_preview(app: &TestApp, upload: &pb::Upload, name: &str) -> TestFile {
    let preview = upload
        .previews
        .iter()
        .find(|p| p.name == name)
        .unwrap_or_else(|| panic!("{name} among {:?}", upload.previews));
    // The URL the API hands out fetches the very object.
    let bytes = reqwest::get(&preview.url)
        .await
        .expect("GET preview")
        .error_for_status()
        .expect("preview URL works")
        .bytes()
        .await
        .expect("preview body");
    assert_eq!(bytes.len() as u64, preview.size_bytes);
    let key = format!("previews/{}/{name}", upload.upload_id);
    let stored = app
        .object_bytes(&app.config.store.temp_bucket, &key)
        .await
        .expect("the preview is stored under its own key");
    assert_eq!(stored, bytes.to_vec());
    TestFile::from_bytes(name, &bytes)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_video_gets_a_poster_and_a_short_clip() {
    let app = TestApp::spawn_with(AppOptions {
        worker_env: vec![("UPLOAD_CLIP_SECONDS".into(), "2".into())],
        ..Default::default()
    })
    .await;
    let video = TestFile::video(4, 640, 360);
    let client = app
        .client("seller-video", upload_domain::SellerGroup::Premium)
        .await;
    let upload = client
        .create("trailer.mp4", video.size, "video/mp4", None)
        .await
        .unwrap();
    let watcher = upload_e2e::follow(&client, &upload.upload_id).await;
    client
        .send_parts(&upload, &video.path, &[1], Default::default(), |_, _| {})
        .await
        .unwrap();
    client.complete(&upload.upload_id).await.unwrap();
    let updates = tokio::time::timeout(Duration::from_secs(120), watcher)
        .await
        .expect("ready within 2 minutes")
        .unwrap();
    let ready = updates.last().and_then(|u| u.upload.clone()).unwrap();
    assert_eq!(ready.state, pb::UploadState::Ready as i32, "{ready:?}");

    // Every processing stage was reported running, then done, on the one stream.
    for stage in [
        pb::Stage::Scan,
        pb::Stage::Hash,
        pb::Stage::Metadata,
        pb::Stage::Preview,
    ] {
        let statuses: Vec<i32> = updates
            .iter()
            .filter_map(|u| u.stages.iter().find(|s| s.stage == stage as i32))
            .map(|s| s.status)
            .collect();
        assert_eq!(
            statuses.last(),
            Some(&(pb::StageStatus::Done as i32)),
            "{stage:?}: {statuses:?}"
        );
        assert!(
            statuses.contains(&(pb::StageStatus::Pending as i32)),
            "{stage:?} was announced before it ran: {statuses:?}"
        );
    }

    let poster = stored_preview(&app, &ready, "poster.jpg").await;
    let (_, w, h, codec) = probe(&poster.path);
    assert_eq!(codec, "mjpeg");
    assert_eq!((w, h), (640, 360), "no upscaling past the 640 px default");
    assert!(decodes(&poster.path));

    let clip = stored_preview(&app, &ready, "clip.mp4").await;
    let (duration, w, h, codec) = probe(&clip.path);
    assert_eq!(codec, "h264");
    assert_eq!(h, 240, "low resolution");
    assert_eq!(w, 426, "aspect ratio kept, even width");
    assert!(
        (1.9..=2.2).contains(&duration),
        "clip of about 2 s, got {duration}"
    );
    assert!(decodes(&clip.path));
    let kinds: Vec<i32> = ready.previews.iter().map(|p| p.kind).collect();
    assert!(kinds.contains(&(pb::PreviewKind::Clip as i32)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_image_gets_thumbnails_of_the_configured_sizes() {
    let app = TestApp::spawn_with(AppOptions {
        worker_env: vec![("UPLOAD_THUMBNAIL_SIZES".into(), "64,200,2000".into())],
        ..Default::default()
    })
    .await;
    let image = TestFile::image(800, 600);
    let (client, upload) = app
        .upload_whole("seller-image", &image, "cover.png", "image/png")
        .await;
    let ready = app
        .wait_settled(&client, &upload.upload_id, Duration::from_secs(60))
        .await;
    assert_eq!(ready.state, pb::UploadState::Ready as i32, "{ready:?}");
    let mut names: Vec<&str> = ready.previews.iter().map(|p| p.name.as_str()).collect();
    names.sort();
    assert_eq!(names, ["thumb-200.jpg", "thumb-2000.jpg", "thumb-64.jpg"]);
    for (name, expected) in [
        ("thumb-64.jpg", (64, 48)),
        ("thumb-200.jpg", (200, 150)),
        // Never enlarged beyond the original.
        ("thumb-2000.jpg", (800, 600)),
    ] {
        let thumb = stored_preview(&app, &ready, name).await;
        let (_, w, h, codec) = probe(&thumb.path);
        assert_eq!(codec, "mjpeg", "{name}");
        assert_eq!((w, h), expected, "{name}");
        let listed = ready.previews.iter().find(|p| p.name == name).unwrap();
        assert_eq!((listed.width, listed.height), expected);
    }
    let media = ready.media.expect("images are probed too");
    assert_eq!((media.width, media.height), (800, 600));
    assert_eq!(media.video_codec, "png");
}

/// The worker with a media sandbox and no ffmpeg or ffprobe of its own: any media
/// run it did itself would fail.
fn sandboxed(sandbox: &MediaSandbox) -> AppOptions {
    AppOptions {
        worker_env: vec![
            (
                "UPLOAD_MEDIA_SANDBOX_SOCKET".into(),
                sandbox.socket.display().to_string(),
            ),
            ("UPLOAD_FFMPEG_PATH".into(), "/nonexistent/ffmpeg".into()),
            ("UPLOAD_FFPROBE_PATH".into(), "/nonexistent/ffprobe".into()),
        ],
        ..Default::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn previews_and_media_facts_are_made_in_the_sandbox_as_another_user() {
    let sandbox = MediaSandbox::start(env!("CARGO_BIN_EXE_test-media-sandbox"), true);
    let app = TestApp::spawn_with(sandboxed(&sandbox)).await;
    let video = TestFile::video(2, 640, 360);
    let (client, upload) = app
        .upload_whole("seller-sandboxed", &video, "clip.mp4", "video/mp4")
        .await;
    let ready = app
        .wait_settled(&client, &upload.upload_id, Duration::from_secs(60))
        .await;
    assert_eq!(ready.state, pb::UploadState::Ready as i32, "{ready:?}");
    let media = ready.media.clone().expect("media facts");
    assert_eq!((media.width, media.height), (640, 360));
    let poster = stored_preview(&app, &ready, "poster.jpg").await;
    assert!(decodes(&poster.path));
    let clip = stored_preview(&app, &ready, "clip.mp4").await;
    assert!(decodes(&clip.path));
    // Probes for metadata and previews, the two preview runs, and the previews'
    // own dimensions: every one through the sandbox, run as uid 65534.
    let runs = sandbox.runs();
    assert!(runs >= 6, "{runs} sandbox runs");
    eprintln!("media sandbox: {runs} runs as uid {SANDBOX_UID}, none in the worker");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn previews_and_media_facts_are_made_by_a_sandbox_server_of_another_user() {
    // The sandbox as a container beside the worker runs it: one process of its own
    // user, listening on a socket the worker reaches; the worker has no tools.
    let sandbox = MediaSandbox::start_server(env!("CARGO_BIN_EXE_test-media-sandbox")).await;
    let app = TestApp::spawn_with(sandboxed(&sandbox)).await;
    let video = TestFile::video(2, 320, 240);
    let image = TestFile::image(400, 300);
    let (client, clip) = app
        .upload_whole("seller-sandbox-server", &video, "clip.mp4", "video/mp4")
        .await;
    let (_, picture) = app
        .upload_whole("seller-sandbox-server", &image, "cover.png", "image/png")
        .await;
    for upload in [&clip, &picture] {
        let ready = app
            .wait_settled(&client, &upload.upload_id, Duration::from_secs(60))
            .await;
        assert_eq!(ready.state, pb::UploadState::Ready as i32, "{ready:?}");
        assert!(ready.media.is_some(), "media facts, from the sandbox");
        assert!(!ready.previews.is_empty(), "previews, from the sandbox");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sandbox_running_as_the_workers_own_user_is_refused() {
    let sandbox = MediaSandbox::start(env!("CARGO_BIN_EXE_test-media-sandbox"), false);
    let mut options = sandboxed(&sandbox);
    options
        .worker_env
        .push(("UPLOAD_JOB_RETRY_BASE_SECS".into(), "1".into()));
    let app = TestApp::spawn_with(options).await;
    let video = TestFile::video(1, 320, 240);
    let (client, upload) = app
        .upload_whole("seller-unsandboxed", &video, "clip.mp4", "video/mp4")
        .await;
    let settled = app
        .wait_settled(&client, &upload.upload_id, Duration::from_secs(60))
        .await;
    assert_eq!(settled.state, pb::UploadState::Failed as i32, "{settled:?}");
    assert!(sandbox.runs() >= 1);
    let refused = app
        .count(
            "SELECT count(*) FROM apalis.jobs WHERE last_result::text LIKE '%must run as a user of its own%'",
        )
        .await;
    assert!(refused >= 1, "the refusal is on record for ops");
}
