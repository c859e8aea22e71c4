//! AbortUpload: no more signing or completing, the store's parts freed, and
//! aborting twice is aborting once.

use upload_e2e::{AppOptions, MIB, TestApp, TestFile, code, pb};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn abort_stops_signing_and_completion_and_is_idempotent() {
    let app = TestApp::spawn_with(AppOptions {
        worker: false,
        ..AppOptions::on_cluster()
    })
    .await;
    let file = TestFile::random(10 * MIB);
    let (client, upload) = app.upload_parts("seller-abort", &file, Some(&[1])).await;
    let id = upload.upload_id.clone();
    let mut api = client.api();

    let aborted = api
        .abort_upload(pb::AbortUploadRequest {
            upload_id: id.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        aborted.upload.unwrap().state,
        pb::UploadState::Aborted as i32
    );
    api.abort_upload(pb::AbortUploadRequest {
        upload_id: id.clone(),
    })
    .await
    .expect("abort is idempotent");

    let part = pb::PartToSign {
        checksum_sha256: Vec::new(),
        part_number: 2,
        content_md5: vec![0; 16],
        content_length: 5 * MIB,
    };
    // The signing path reads the upload's fixed facts from cache; the state check
    // happens where the signed part is recorded.
    let status = api
        .sign_parts(pb::SignPartsRequest {
            upload_id: id.clone(),
            parts: vec![part],
        })
        .await
        .expect_err("no signing after abort");
    assert_eq!(status.code(), tonic::Code::FailedPrecondition);
    assert_eq!(
        code(
            api.complete_upload(pb::CompleteUploadRequest {
                upload_id: id.clone()
            })
            .await
        ),
        tonic::Code::FailedPrecondition
    );
    // The store no longer holds the multipart upload.
    assert!(
        app.first_upload_parts().await.is_err(),
        "multipart upload should be gone"
    );
}
