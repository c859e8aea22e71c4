//! GetDownloadUrl: a short-lived link to one version's bytes (or the current
//! one's), named as the seller named the file; a version that does not exist is
//! not found.

use upload_e2e::{TestApp, code, fetch};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_version_downloads_its_own_bytes_under_its_own_name() {
    let app = TestApp::spawn_with(upload_e2e::AppOptions::on_cluster()).await;
    let item = app.item_with_two_versions("seller-download").await;

    // Both versions download with their own bytes, named as the seller named them.
    for (version, file, name) in [
        (1, &item.first, "pack v1.zip"),
        (2, &item.second, "pack v2.zip"),
    ] {
        let link = item.download(version).await.expect("GetDownloadUrl");
        let got = fetch(&link.url).await;
        assert_eq!(got.status, 200);
        assert_eq!(
            got.body,
            std::fs::read(&file.path).unwrap(),
            "version {version}"
        );
        let disposition = got.disposition.expect("a download name");
        assert!(
            disposition.contains(&name.replace(' ', "%20")),
            "{disposition}"
        );
        let expires = link.expires_at.expect("expiry").seconds;
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs() as i64;
        assert!(
            expires > now && expires <= now + 301,
            "short expiry: {}",
            expires - now
        );
    }

    // Version 0 is the current one.
    let current = item.download(0).await.expect("GetDownloadUrl");
    assert_eq!(current.version.unwrap().version, 2);
    assert_eq!(
        fetch(&current.url).await.body,
        std::fs::read(&item.second.path).unwrap()
    );
    assert_eq!(code(item.download(3).await), tonic::Code::NotFound);
}
