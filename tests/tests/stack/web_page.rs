//! The browser page (`clients/web`) in headless Chromium: gRPC-web to the server,
//! parts straight to the store, every stage to ready, and a reload in the middle that
//! continues the upload instead of restarting it.

use std::path::Path;
use std::time::Duration;
use upload_domain::SellerGroup;
use upload_e2e::{AppOptions, TestApp, TestFile, pb};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_page_uploads_resumes_after_a_reload_and_shows_every_stage() {
    let app = TestApp::spawn_with(AppOptions {
        env: vec![(
            "UPLOAD_DEFAULT_PART_SIZE_BYTES".into(),
            (5 * 1024 * 1024).to_string(),
        )],
        ..Default::default()
    })
    .await;
    let seller = format!("seller-web-{}", uuid::Uuid::now_v7().simple());
    let token = app.token(&seller, SellerGroup::Standard);
    let file = TestFile::random(60 * 1024 * 1024 + 11);
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let shots = repo.join("target/web");
    std::fs::create_dir_all(&shots).unwrap();
    let screenshot = shots.join("upload-page.png");
    let _ = std::fs::remove_file(&screenshot);

    let out = tokio::time::timeout(
        Duration::from_secs(240),
        tokio::process::Command::new("node")
            .arg(repo.join("clients/web/test/e2e.mjs"))
            .env("WEB_API", &app.endpoint)
            .env("WEB_SERVER_CERT", &upload_e2e::test_tls().cert_path)
            .env("WEB_TOKEN", &token)
            .env("WEB_FILE", &file.path)
            .env("WEB_SCREENSHOT", &screenshot)
            .output(),
    )
    .await
    .expect("the browser test finished in time")
    .expect("node runs (deploy/local/stack.sh up installs Chromium and playwright-core)");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let report = format!("{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "{report}");
    let result: serde_json::Value =
        serde_json::from_str(stdout.lines().last().unwrap_or("{}")).expect(&report);

    let upload_id = result["uploadId"].as_str().expect("upload id").to_owned();
    assert_eq!(
        result["uploadIdAfterReload"].as_str(),
        Some(upload_id.as_str()),
        "the reload continued the same upload: {report}"
    );
    assert!(
        result["offeredResume"]
            .as_str()
            .unwrap_or("")
            .contains("product.bin"),
        "after the reload the page offers to continue: {report}"
    );
    let part_count = 13; // 60 MiB + 11 B in 5 MiB parts
    let before = result["partsBeforeReload"].as_u64().unwrap();
    let puts_after = result["putsAfterReload"].as_u64().unwrap();
    assert!(before >= 3, "{report}");
    assert!(
        puts_after <= part_count - before,
        "after the reload only missing parts were sent ({puts_after} PUTs, {before} of {part_count} stored before): {report}"
    );
    assert!(puts_after >= 1, "{report}");
    assert_eq!(result["phase"], "ready", "{report}");
    for stage in ["upload", "scan", "hash", "metadata", "preview"] {
        let status = result["stages"][stage].as_str().unwrap_or("missing");
        assert!(
            status == "done"
                || (status == "skipped" && stage != "upload" && stage != "scan" && stage != "hash"),
            "stage {stage} ended {status}: {report}"
        );
    }
    assert!(
        result["result"]
            .as_str()
            .unwrap_or("")
            .contains(&file.md5_hex),
        "{report}"
    );

    let client = app.client(&seller, SellerGroup::Standard).await;
    let upload = client.get(&upload_id).await.unwrap().upload.unwrap();
    assert_eq!(upload.state, pb::UploadState::Ready as i32);
    let meta = upload.metadata.unwrap();
    assert_eq!(
        (meta.md5_hex, meta.sha256_hex),
        (file.md5_hex, file.sha256_hex)
    );
    assert!(
        std::fs::metadata(&screenshot).unwrap().len() > 1000,
        "screenshot saved"
    );
}
