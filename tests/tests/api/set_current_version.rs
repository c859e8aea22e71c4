//! SetCurrentVersion: an older version can be made current again, and downloads
//! follow it; a version that does not exist is not found.

use upload_e2e::{TestApp, TwoVersions, code, pb};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_older_version_becomes_current_again() {
    let app = TestApp::spawn().await;
    let TwoVersions {
        client,
        item_id,
        file_id,
        first,
        ..
    } = app.item_with_two_versions("seller-current").await;

    // An older version can be made current again.
    let file = client
        .items()
        .set_current_version(pb::SetCurrentVersionRequest {
            item_id: item_id.clone(),
            file_id: file_id.clone(),
            version: 1,
        })
        .await
        .expect("SetCurrentVersion")
        .into_inner()
        .file
        .unwrap();
    assert_eq!(file.current.unwrap().md5_hex, first.md5_hex);
    assert_eq!(file.version_count, 2);
    let current = client
        .items()
        .get_download_url(pb::GetDownloadUrlRequest {
            item_id: item_id.clone(),
            file_id: file_id.clone(),
            version: 0,
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(current.version.unwrap().version, 1);
    assert_eq!(
        code(
            client
                .items()
                .set_current_version(pb::SetCurrentVersionRequest {
                    item_id: item_id.clone(),
                    file_id: file_id.clone(),
                    version: 3,
                })
                .await
        ),
        tonic::Code::NotFound,
        "a version that does not exist is not found"
    );
    assert_eq!(
        code(
            client
                .items()
                .set_current_version(pb::SetCurrentVersionRequest {
                    item_id: item_id.clone(),
                    file_id: file_id.clone(),
                    version: 0,
                })
                .await
        ),
        tonic::Code::InvalidArgument,
        "version 0 names no version"
    );
}
