//! SetCurrentVersion: an older version can be made current again, and downloads
//! follow it; a version that does not exist is not found.

use upload_e2e::{TestApp, code};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_older_version_becomes_current_again() {
    let app = TestApp::spawn().await;
    let item = app.item_with_two_versions("seller-current").await;

    let file = item.set_current(1).await.expect("SetCurrentVersion").file;
    let file = file.expect("the file");
    assert_eq!(file.current.unwrap().md5_hex, item.first.md5_hex);
    assert_eq!(file.version_count, 2);
    // Downloads of the current version follow.
    let current = item.download(0).await.expect("GetDownloadUrl");
    assert_eq!(current.version.unwrap().version, 1);

    assert_eq!(
        code(item.set_current(3).await),
        tonic::Code::NotFound,
        "a version that does not exist is not found"
    );
    assert_eq!(
        code(item.set_current(0).await),
        tonic::Code::InvalidArgument,
        "version 0 names no version"
    );
}
