//! GrantAccess / RevokeAccess: other users see nothing of an item until granted;
//! a granted user reads and downloads but never changes; a revoked one is refused.

use crate::only_file;
use upload_e2e::{MIB, TestApp, TestFile, WAIT, code, fetch, pb, submit_new_item, wait_item};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn other_sellers_cannot_list_or_download_and_granted_users_can() {
    let app = TestApp::spawn().await;
    let file = TestFile::random(MIB);
    let (owner, up) = app
        .ready_upload(
            "seller-own",
            &file,
            "secret.bin",
            "application/octet-stream",
        )
        .await;
    let res = submit_new_item(
        &owner,
        "own",
        pb::ItemKind::DigitalFile,
        "Mine",
        &up.upload_id,
    )
    .await;
    let item = wait_item(&owner, &res.item.unwrap().item_id, WAIT).await;
    let item_id = item.item_id.clone();
    let file_id = only_file(&item).file_id.clone();
    let list = pb::ListVersionsRequest {
        item_id: item_id.clone(),
        file_id: String::new(),
    };
    let download = pb::GetDownloadUrlRequest {
        item_id: item_id.clone(),
        file_id: file_id.clone(),
        version: 1,
    };

    let buyer = app.user("buyer-1").await;
    assert_eq!(
        code(buyer.items().list_versions(list.clone()).await),
        tonic::Code::NotFound
    );
    assert_eq!(
        code(buyer.items().get_download_url(download.clone()).await),
        tonic::Code::NotFound
    );
    assert_eq!(
        code(
            buyer
                .items()
                .get_item(pb::GetItemRequest {
                    item_id: item_id.clone()
                })
                .await
        ),
        tonic::Code::NotFound
    );
    // Not the owner: cannot grant itself access either.
    assert_eq!(
        code(
            buyer
                .items()
                .grant_access(pb::GrantAccessRequest {
                    item_id: item_id.clone(),
                    user_id: "buyer-1".into(),
                })
                .await
        ),
        tonic::Code::NotFound
    );

    owner
        .items()
        .grant_access(pb::GrantAccessRequest {
            item_id: item_id.clone(),
            user_id: "buyer-1".into(),
        })
        .await
        .expect("GrantAccess");
    let versions = buyer
        .items()
        .list_versions(list.clone())
        .await
        .unwrap()
        .into_inner();
    assert_eq!(versions.versions.len(), 1);
    let link = buyer
        .items()
        .get_download_url(download.clone())
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        fetch(&link.url).await.body,
        std::fs::read(&file.path).unwrap()
    );
    // Granted to read, not to change.
    assert_eq!(
        code(
            buyer
                .items()
                .set_current_version(pb::SetCurrentVersionRequest {
                    item_id: item_id.clone(),
                    file_id: file_id.clone(),
                    version: 1,
                })
                .await
        ),
        tonic::Code::PermissionDenied
    );
    // Another user is still refused.
    let stranger = app.user("seller-other").await;
    assert_eq!(
        code(stranger.items().get_download_url(download.clone()).await),
        tonic::Code::NotFound
    );

    owner
        .items()
        .revoke_access(pb::RevokeAccessRequest {
            item_id: item_id.clone(),
            user_id: "buyer-1".into(),
        })
        .await
        .expect("RevokeAccess");
    assert_eq!(
        code(buyer.items().list_versions(list).await),
        tonic::Code::NotFound
    );
}
