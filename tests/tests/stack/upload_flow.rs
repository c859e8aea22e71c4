//! The whole path: create, parallel signed parts straight to the store, complete,
//! the scan (clamd and hashes in one read), metadata and preview stages, and
//! WatchProgress following every stage to ready.

use std::time::Duration;
use upload_client::SendOptions;
use upload_domain::SellerGroup;
use upload_e2e::{MIB, TestApp, TestFile, pb};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_hundred_mb_upload_reaches_ready_with_matching_hashes_and_live_progress() {
    let app = TestApp::spawn_with(upload_e2e::AppOptions {
        env: vec![("UPLOAD_PROGRESS_REFRESH_MS".into(), "200".into())],
        ..Default::default()
    })
    .await;
    let file = TestFile::random(300_000_000);
    let client = app.client("seller-300", SellerGroup::Standard).await;

    let upload = client
        .create(
            "season-1.bin",
            file.size,
            "application/octet-stream",
            Some(16 * MIB),
        )
        .await
        .expect("CreateUpload");
    assert_eq!(upload.part_size_bytes, 16 * MIB);
    assert_eq!(upload.part_count, 18);

    // Watch from the start: the stream must follow the upload through to ready.
    let watcher = upload_e2e::follow(&client, &upload.upload_id).await;

    let all: Vec<u32> = (1..=upload.part_count).collect();
    let stats = client
        .send_parts(
            &upload,
            &file.path,
            &all,
            SendOptions {
                concurrency: 4,
                attempts: 3,
                ..Default::default()
            },
            |_, _| {},
        )
        .await
        .expect("sending parts");
    assert_eq!(stats.parts_sent, 18);
    assert_eq!(stats.bytes_sent, file.size);

    let completed = client
        .complete(&upload.upload_id)
        .await
        .expect("CompleteUpload");
    assert_ne!(completed.state, pb::UploadState::Uploading as i32);

    let updates = tokio::time::timeout(Duration::from_secs(120), watcher)
        .await
        .expect("WatchProgress ended within 2 minutes")
        .expect("watcher task");
    let last = updates
        .last()
        .and_then(|u| u.upload.clone())
        .expect("at least one update");
    assert_eq!(
        last.state,
        pb::UploadState::Ready as i32,
        "final update: {last:?}"
    );
    let metadata = last.metadata.expect("metadata on a ready upload");
    assert_eq!(metadata.size_bytes, file.size);
    assert_eq!(metadata.md5_hex, file.md5_hex);
    assert_eq!(metadata.sha256_hex, file.sha256_hex);

    // The upload stage advanced while parts travelled straight to the store.
    let upload_done: Vec<u64> = updates
        .iter()
        .filter_map(|u| {
            u.stages
                .iter()
                .find(|s| s.stage == pb::Stage::Upload as i32)
        })
        .map(|s| s.bytes_done)
        .collect();
    assert!(
        upload_done.windows(2).all(|w| w[0] <= w[1]),
        "upload progress went backwards: {upload_done:?}"
    );
    assert!(
        upload_done.iter().any(|&d| d > 0 && d < file.size),
        "no intermediate upload progress seen: {upload_done:?}"
    );

    // Processing advanced too: the scan and hash stages (one read feeds both) were
    // seen part-way, and never went backwards.
    for stage in [pb::Stage::Scan, pb::Stage::Hash] {
        let done: Vec<u64> = updates
            .iter()
            .filter_map(|u| u.stages.iter().find(|s| s.stage == stage as i32))
            .map(|s| s.bytes_done)
            .collect();
        assert!(
            done.windows(2).all(|w| w[0] <= w[1]),
            "{stage:?} progress went backwards: {done:?}"
        );
        assert!(
            done.iter().any(|&d| d > 0 && d < file.size),
            "no intermediate {stage:?} progress seen: {done:?}"
        );
        assert_eq!(done.last().copied(), Some(file.size));
    }
    let states: Vec<i32> = updates
        .iter()
        .filter_map(|u| u.upload.as_ref().map(|u| u.state))
        .collect();
    // The stream sends the latest state, not every state: the scan of 300 MB
    // lasts long enough to be seen; processing a file with no media work may pass
    // between two updates. Never backwards, ending ready.
    assert!(
        states.contains(&(pb::UploadState::Scanning as i32)),
        "scanning not among the states seen: {states:?}"
    );
    assert!(
        states.windows(2).all(|w| w[0] <= w[1]),
        "the states went backwards: {states:?}"
    );
    assert_eq!(states.last(), Some(&(pb::UploadState::Ready as i32)));
    let scan = last.scan.expect("a scan verdict");
    assert_eq!(scan.verdict, pb::ScanVerdict::Clean as i32);
    // A file that is neither video nor image gets no previews nor media facts, and
    // the final update says so stage by stage.
    let final_stages = &updates.last().expect("an update").stages;
    for stage in [pb::Stage::Metadata, pb::Stage::Preview] {
        let s = final_stages
            .iter()
            .find(|s| s.stage == stage as i32)
            .unwrap_or_else(|| panic!("{stage:?} in the final update"));
        assert_eq!(s.status, pb::StageStatus::Skipped as i32, "{s:?}");
        assert!(s.detail.contains("application/octet-stream"), "{s:?}");
    }
    assert!(last.previews.is_empty() && last.media.is_none());
}
