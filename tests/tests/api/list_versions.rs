//! ListVersions: every version of an item's files, newest first, the current one
//! marked; a file the item does not have is not found.

use upload_e2e::{TestApp, TwoVersions, code, pb};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn versions_are_listed_newest_first_with_the_current_one_marked() {
    let app = TestApp::spawn_with(upload_e2e::AppOptions::on_cluster()).await;
    let item = app.item_with_two_versions("seller-list").await;
    let TwoVersions {
        client,
        item_id,
        file_id,
        first,
        second,
    } = &item;
    for file in [String::new(), file_id.to_string()] {
        let versions = client
            .items()
            .list_versions(pb::ListVersionsRequest {
                item_id: item_id.to_string(),
                file_id: file,
            })
            .await
            .unwrap()
            .into_inner()
            .versions;
        let listed: Vec<(u32, &str, bool)> = versions
            .iter()
            .map(|v| (v.version, v.md5_hex.as_str(), v.current))
            .collect();
        assert_eq!(
            listed,
            vec![
                (2, second.md5_hex.as_str(), true),
                (1, first.md5_hex.as_str(), false)
            ]
        );
        assert_eq!(versions[1].file_name, "pack v1.zip");
        assert_eq!(versions[1].sha256_hex, first.sha256_hex);
    }
    let stranger = client
        .items()
        .list_versions(pb::ListVersionsRequest {
            item_id: item_id.to_string(),
            file_id: upload_domain::FileId::new().to_string(),
        })
        .await;
    assert_eq!(code(stranger), tonic::Code::NotFound);
}
