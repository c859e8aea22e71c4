//! The background jobs on the real stack, one module per job, the sweeper,
//! redelivery across them, and what an operator does to them (`admin`).

mod admin;
mod metadata;
mod move_file;
mod notify;
mod persist;
mod preview;
mod redelivery;
mod rescan;
mod scan;
mod sweeper;
mod worker_queues;

use upload_e2e::{AppOptions, HookListener, TestApp, TestFile, pb, submit_new_item};

pub(crate) const SECRET: &str = "webhook-secret-for-tests-0123456789abcdef";

pub(crate) async fn app_with_webhook() -> (TestApp, HookListener) {
    let hook = HookListener::start().await;
    let app = TestApp::spawn_with(AppOptions {
        worker_env: vec![
            ("UPLOAD_WEBHOOK_URL".into(), hook.url.clone()),
            ("UPLOAD_WEBHOOK_SECRET".into(), SECRET.into()),
        ],
        ..Default::default()
    })
    .await;
    (app, hook)
}

/// An app whose pipeline worker ran and stopped: uploads are ready, and item jobs
/// queue up with nobody to run them.
pub(crate) async fn ready_then_no_worker(
    seller: &str,
    files: &[&TestFile],
) -> (TestApp, upload_client::UploadClient, Vec<pb::Upload>) {
    let app = TestApp::spawn_with(AppOptions {
        worker: false,
        ..Default::default()
    })
    .await;
    let worker = TestApp::spawn_worker_for(&app, AppOptions::default()).await;
    let mut ready = Vec::new();
    let mut client = None;
    for (i, file) in files.iter().enumerate() {
        let (c, up) = app
            .ready_upload(
                seller,
                file,
                &format!("file-{i}.bin"),
                "application/octet-stream",
            )
            .await;
        ready.push(up);
        client = Some(c);
    }
    drop(worker);
    (app, client.expect("at least one file"), ready)
}

pub(crate) async fn submit(
    client: &upload_client::UploadClient,
    key: &str,
    upload: &pb::Upload,
) -> upload_domain::SubmissionId {
    let res = submit_new_item(
        client,
        key,
        pb::ItemKind::DigitalFile,
        key,
        &upload.upload_id,
    )
    .await;
    res.submission_id.parse().expect("submission id")
}

/// Asserts the end state of a moved upload: one version, the content at its MD5 key,
/// and nothing of the upload left in the temp bucket.
pub(crate) async fn assert_moved_once(app: &TestApp, upload: &pb::Upload, file: &TestFile) {
    let id = &upload.upload_id;
    assert_eq!(
        app.count(&format!(
            "SELECT count(*) FROM file_versions WHERE upload_id = '{id}'"
        ))
        .await,
        1
    );
    let key = format!("files/{}", file.md5_hex);
    assert_eq!(
        app.object_bytes(app.regular_bucket(), &key).await.unwrap(),
        std::fs::read(&file.path).unwrap()
    );
    let temp_key = app.temp_key(id).await;
    assert!(
        app.object_bytes(app.temp_bucket(), &temp_key)
            .await
            .is_none()
    );
    assert_eq!(
        app.keys(app.temp_bucket(), &format!("previews/{id}/"))
            .await,
        Vec::<String>::new()
    );
}
