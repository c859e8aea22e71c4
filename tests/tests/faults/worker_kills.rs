//! The worker SIGKILLed at each step that matters — mid-scan, after the verdict
//! before it is saved, mid-preview, and in the move before the copy, after the copy
//! before the record, after the record before the delete — with a new worker
//! started at once: each upload or submission reaches its final state with one
//! version and nothing left behind. Each test prints the time from the kill to the
//! final state.

use std::collections::HashMap;
use std::time::Duration;

use upload_e2e::{AppOptions, MIB, TestApp, TestFile, pb, submit_new_item, wait_item};

use crate::{WorkerProcess, one_row_each, report, upload, wait_state};

/// Where the worker is killed, and what the test drives it through.
#[derive(Debug, Clone, Copy)]
enum Flow {
    /// An upload scanned and processed to ready.
    Upload,
    /// A video processed to ready (previews made).
    Video,
    /// An upload made ready, then submitted and stored.
    Submission,
}

async fn kill_at(point: &str, flow: Flow) {
    let app = TestApp::spawn_with(AppOptions {
        worker: false,
        env: vec![("UPLOAD_JOB_RETRY_MAX_SECS".into(), "2".into())],
        ..Default::default()
    })
    .await;
    let mut worker = WorkerProcess::start(&app, Some(point));
    let (file, name, content_type) = match flow {
        Flow::Video => (TestFile::video(4, 640, 360), "clip.mp4", "video/mp4"),
        Flow::Upload | Flow::Submission => {
            // FAULT_FILE_MIB=400 measures a larger file's recovery by hand.
            let mib: u64 = std::env::var("FAULT_FILE_MIB")
                .ok()
                .and_then(|v| v.parse().ok())
                .unwrap_or(60);
            (
                TestFile::random(mib * MIB + 7),
                "data.bin",
                "application/octet-stream",
            )
        }
    };
    let (client, up) = upload(&app, "seller-crash", &file, name, content_type).await;
    let item = if matches!(flow, Flow::Submission) {
        wait_state(
            &client,
            &up.upload_id,
            pb::UploadState::Ready,
            Duration::from_secs(120),
        )
        .await;
        let res = submit_new_item(
            &client,
            "crash",
            pb::ItemKind::DigitalFile,
            "Crash",
            &up.upload_id,
        )
        .await;
        Some(res.item.expect("item").item_id)
    } else {
        None
    };
    assert_eq!(
        worker.wait_for_failpoint(Duration::from_secs(120)).await,
        point
    );
    let killed = worker.kill().await;
    let worker = WorkerProcess::start(&app, None);
    let done = match &item {
        None => {
            wait_state(
                &client,
                &up.upload_id,
                pb::UploadState::Ready,
                Duration::from_secs(120),
            )
            .await
        }
        Some(item_id) => {
            let item = wait_item(&client, item_id, Duration::from_secs(120)).await;
            assert_eq!(item.state, pb::SubmissionState::Stored as i32, "{item:?}");
            wait_state(
                &client,
                &up.upload_id,
                pb::UploadState::Stored,
                Duration::from_secs(30),
            )
            .await
        }
    };
    let recovery = killed.elapsed();
    // What the killed worker ran to its end but had not yet recorded as done is
    // taken over once its heartbeats stop, and run again (to no new effect):
    // nothing is left unfinished.
    app.wait_count(
        "SELECT count(*) FROM apalis.jobs WHERE status IN ('Pending', 'Queued', 'Running')
            AND run_at <= now()",
        0,
        Duration::from_secs(45),
    )
    .await;
    worker.stop().await;

    assert_eq!(
        done.metadata.as_ref().map(|m| m.md5_hex.as_str()),
        Some(file.md5_hex.as_str())
    );
    one_row_each(&app, "upload_scans", std::slice::from_ref(&done)).await;
    if matches!(flow, Flow::Video) {
        let mut names: Vec<&str> = done.previews.iter().map(|p| p.name.as_str()).collect();
        names.sort();
        assert_eq!(names, ["clip.mp4", "poster.jpg"]);
    }
    if matches!(flow, Flow::Submission) {
        one_row_each(&app, "file_versions", std::slice::from_ref(&done)).await;
        assert_eq!(app.count("SELECT count(*) FROM stored_objects").await, 1);
        let temp = app.bucket(upload_storage::Bucket::Temp).to_owned();
        assert_eq!(
            app.keys(&temp, "").await,
            Vec::<String>::new(),
            "the temp object is gone"
        );
        let regular = app.bucket(upload_storage::Bucket::Regular).to_owned();
        assert_eq!(
            app.keys(&regular, "").await,
            vec![format!("files/{}", file.md5_hex)]
        );
    }
    let mut figures = HashMap::new();
    figures.insert("point", point.to_owned());
    figures.insert("recovery_s", format!("{:.1}", recovery.as_secs_f64()));
    report("worker kill", &figures);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_mid_scan() {
    kill_at("scan.mid-read", Flow::Upload).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_after_the_verdict_before_it_is_saved() {
    kill_at("scan.verdict", Flow::Upload).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_mid_preview() {
    kill_at("preview.mid", Flow::Video).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_in_the_move_before_the_copy() {
    kill_at("move.before-copy", Flow::Submission).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_in_the_move_after_the_copy_before_the_record() {
    kill_at("move.after-copy", Flow::Submission).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_in_the_move_after_the_record_before_the_delete() {
    kill_at("move.after-record", Flow::Submission).await;
}
