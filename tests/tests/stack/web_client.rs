//! The web client package (`clients/web`) as its users run it, against the real
//! server, store, scanner and workers: its upload engine in Node over the gRPC
//! transport (`test/node-upload.mjs`, as a gateway would), and in Chromium and
//! Firefox over gRPC-web with its Web Worker hashing (`test/browser.mjs` driving
//! `test/browser/engine.html`). Each run stops an upload after two parts, is
//! refused for another file of the same size, continues it with only the missing
//! parts, watches it to ready, submits it as an item and
//! watches that to stored.

use std::ffi::OsStr;
use upload_domain::SellerGroup;
use upload_e2e::{AppOptions, MIB, TestApp, pb, run_web_script, screenshot_path};

/// 5 MiB parts: a 30 MiB file has six, stopped after two.
async fn app() -> TestApp {
    TestApp::spawn_with(AppOptions {
        env: vec![(
            "UPLOAD_DEFAULT_PART_SIZE_BYTES".into(),
            (5 * MIB).to_string(),
        )],
        ..Default::default()
    })
    .await
}

/// Runs `script` for `seller` with a 30 MiB file stopped after two parts, and
/// checks what every run must show.
async fn engine_run(
    script: &str,
    seller: &str,
    envs: &[(&str, &OsStr)],
) -> (serde_json::Value, String) {
    let app = app().await;
    let token = app.token(seller, SellerGroup::Standard);
    let size = (30 * MIB).to_string();
    let mut all = vec![
        ("WEB_SIZE", OsStr::new(&size)),
        ("WEB_STOP_AFTER", OsStr::new("2")),
    ];
    all.extend_from_slice(envs);
    let (result, report) = run_web_script(&app, &token, script, &all).await;
    let number = |key: &str| {
        result[key]
            .as_u64()
            .unwrap_or_else(|| panic!("{key}: {report}"))
    };
    let (parts, sent_first, missing) = (
        number("partCount"),
        number("sentFirst"),
        number("missingAtResume"),
    );
    assert_eq!(parts, 6, "{report}");
    assert_eq!(
        result["resumed"], true,
        "the second round continued the upload: {report}"
    );
    // What the store held was not sent again: the second round PUT exactly the
    // parts it lacked, and the first round's stored parts are not among them.
    assert!(sent_first >= 2 && missing <= parts - sent_first, "{report}");
    assert_eq!(
        number("putsSecond"),
        missing,
        "only the missing parts were sent: {report}"
    );
    assert_eq!(result["completedState"], "UPLOADED", "{report}");
    assert_eq!(result["finalState"], "READY", "watched to ready: {report}");
    assert_eq!(
        result["serverMd5"], result["md5"],
        "the stored bytes are the file's: {report}"
    );
    assert_eq!(
        result["itemState"],
        pb::SubmissionState::Stored as i32,
        "submitted and watched to stored: {report}"
    );
    assert_eq!(result["itemVersionMd5"], result["md5"], "{report}");
    assert_eq!(
        (result["otherFile"].as_str(), result["putsOther"].as_u64()),
        (Some("OtherFileError"), Some(0)),
        "another file of the same size is refused before any PUT: {report}"
    );
    // A refusal is read with its ErrorInfo reason and BadRequest field.
    assert_eq!(result["refusal"]["code"], "INVALID_ARGUMENT", "{report}");
    assert_eq!(result["refusal"]["reason"], "INVALID_ARGUMENT", "{report}");
    assert_eq!(result["refusal"]["fields"][0], "upload_id", "{report}");
    (result, report)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn in_node_the_engine_resumes_with_only_the_missing_parts_to_stored() {
    engine_run("node-upload.mjs", "seller-engine-node", &[]).await;
}

/// The engine page in `browser`, with its screenshots.
async fn in_browser(browser: &str) {
    let mid = screenshot_path(&format!("engine-{browser}-uploading.png"));
    let done = screenshot_path(&format!("engine-{browser}-stored.png"));
    let (result, report) = engine_run(
        "browser.mjs",
        &format!("seller-engine-{browser}"),
        &[
            ("WEB_BROWSER", OsStr::new(browser)),
            ("WEB_SCREENSHOT_MID", mid.as_os_str()),
            ("WEB_SCREENSHOT_DONE", done.as_os_str()),
        ],
    )
    .await;
    assert_eq!(result["browser"], browser, "{report}");
    for shot in [&mid, &done] {
        assert!(
            std::fs::metadata(shot).is_ok_and(|m| m.len() > 1000),
            "{} was saved: {report}",
            shot.display()
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn in_chromium_the_engine_resumes_with_only_the_missing_parts_to_stored() {
    in_browser("chromium").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn in_firefox_the_engine_resumes_with_only_the_missing_parts_to_stored() {
    in_browser("firefox").await;
}
