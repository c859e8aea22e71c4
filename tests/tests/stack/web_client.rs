//! The web client package (`clients/web`) as its users run it, against the real
//! server, store, scanner and workers: its upload engine in Node over the gRPC
//! transport (`test/node-upload.mjs`, as a gateway would), and in Chromium and
//! Firefox over gRPC-web with its Web Worker hashing (`test/browser.mjs` driving
//! `test/browser/engine.html`). Each run stops an upload after two parts, is
//! refused for another file of the same size, continues it with only the missing
//! parts, watches it to ready, submits it as an item and
//! watches that to stored. And the SSE gateway example (`examples/sse-gateway.mjs`)
//! followed from each browser's EventSource (`test/gateway.mjs`).

use std::ffi::OsStr;
use upload_domain::SellerGroup;
use upload_e2e::{AppOptions, MIB, TestApp, pb, run_web_script, screenshot_path, small_parts_app};

/// Runs `script` for `seller` with a 30 MiB file stopped after two parts, and
/// checks what every run must show.
async fn engine_run(
    script: &str,
    seller: &str,
    envs: &[(&str, &OsStr)],
) -> (serde_json::Value, String) {
    let app = small_parts_app().await;
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

/// The SSE gateway example, followed from `browser`'s EventSource.
async fn through_the_gateway(browser: &str) {
    use upload_domain::{Role, Scope};
    let app = TestApp::spawn_with(AppOptions {
        env: vec![("UPLOAD_SERVICE_ACT_FOR".into(), "gateway=seller".into())],
        ..Default::default()
    })
    .await;
    let seller = format!("seller-gateway-{browser}");
    let token = app.token(&seller, SellerGroup::Standard);
    let service = app.role_token(
        Role::Service,
        "gateway",
        &[Scope::UploadsRead, Scope::ItemsRead],
    );
    let (result, report) = run_web_script(
        &app,
        &token,
        "gateway.mjs",
        &[
            ("WEB_BROWSER", OsStr::new(browser)),
            ("WEB_SELLER", OsStr::new(&seller)),
            ("WEB_SERVICE_TOKEN", OsStr::new(&service)),
        ],
    )
    .await;
    assert_eq!(
        result["stranger"],
        serde_json::json!({ "opens": 0, "closed": true, "data": 0 }),
        "no session, no stream: {report}"
    );
    let states = result["uploadStates"].as_array().unwrap();
    assert_eq!(
        states.last().and_then(|s| s.as_str()),
        Some("UPLOAD_STATE_READY"),
        "{report}"
    );
    assert!(
        states.len() >= 3,
        "the upload's states streamed as they came: {report}"
    );
    assert_eq!(result["uploadEnded"], true, "{report}");
    assert!(
        result["lastMd5"].as_str().is_some_and(|m| m.len() == 32),
        "{report}"
    );
    assert_eq!(
        result["itemStates"]
            .as_array()
            .unwrap()
            .last()
            .and_then(|s| s.as_str()),
        Some("SUBMISSION_STATE_STORED"),
        "{report}"
    );
    assert_eq!(result["itemEnded"], true, "{report}");
    let after = &result["afterSessionEnd"];
    assert_eq!(
        (&after["opens"], &after["closed"], &after["ended"]),
        (
            &serde_json::json!(1),
            &serde_json::json!(true),
            &serde_json::json!(false)
        ),
        "the open stream ended with the session and was not let back in: {report}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn in_chromium_the_sse_gateway_streams_stages_for_the_session_s_seller_until_it_ends() {
    through_the_gateway("chromium").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn in_firefox_the_sse_gateway_streams_stages_for_the_session_s_seller_until_it_ends() {
    through_the_gateway("firefox").await;
}

/// The Uppy Dashboard with the package's plugin in `browser`, reloaded mid-upload.
async fn through_uppy(browser: &str) {
    let app = small_parts_app().await;
    let token = app.token(&format!("seller-uppy-{browser}"), SellerGroup::Standard);
    let mid = screenshot_path(&format!("uppy-{browser}-uploading.png"));
    let done = screenshot_path(&format!("uppy-{browser}-ready.png"));
    let size = 30 * MIB;
    let size_text = size.to_string();
    let (result, report) = run_web_script(
        &app,
        &token,
        "uppy.mjs",
        &[
            ("WEB_BROWSER", OsStr::new(browser)),
            ("WEB_SIZE", OsStr::new(&size_text)),
            ("WEB_STOP_AFTER", OsStr::new("2")),
            ("WEB_SCREENSHOT_MID", mid.as_os_str()),
            ("WEB_SCREENSHOT_DONE", done.as_os_str()),
        ],
    )
    .await;
    let upload_id = result["uploadIdBeforeReload"].as_str().expect(&report);
    assert_eq!(
        result["uploadIdRestored"].as_str(),
        Some(upload_id),
        "golden-retriever brought the upload back: {report}"
    );
    assert_eq!(
        result["ready"][0]["uploadId"].as_str(),
        Some(upload_id),
        "{report}"
    );
    // After the reload the plugin started from what the store held, and PUT the
    // rest: exactly the missing parts.
    let at_resume = result["bytesAtResume"].as_u64().expect(&report);
    assert!(at_resume >= 2 * 5 * MIB, "{report}");
    let missing = (size - at_resume).div_ceil(5 * MIB);
    assert_eq!(
        result["putsAfterReload"].as_u64(),
        Some(missing),
        "only the missing parts were sent after the reload: {report}"
    );
    assert!(
        result["stages"]
            .as_array()
            .is_some_and(|s| s.iter().any(|m| m == "Scanning for malware")),
        "stages shown as postprocess progress: {report}"
    );
    assert_eq!(result["ready"][0]["md5"], result["md5"], "{report}");
    assert_eq!(
        result["item"]["state"], "STORED",
        "the app submitted the ready upload: {report}"
    );
    assert_eq!(result["item"]["md5"], result["md5"], "{report}");
    for shot in [&mid, &done] {
        assert!(
            std::fs::metadata(shot).is_ok_and(|m| m.len() > 1000),
            "{report}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn in_chromium_uppy_uploads_through_the_plugin_and_a_reload_sends_only_the_missing_parts() {
    through_uppy("chromium").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn in_firefox_uppy_uploads_through_the_plugin_and_a_reload_sends_only_the_missing_parts() {
    through_uppy("firefox").await;
}
