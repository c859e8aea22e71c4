//! GrantAccess / RevokeAccess: other users see nothing of an item until granted;
//! a granted user reads and downloads but never changes; a revoked one is refused;
//! the order service (a scoped service) grants a buyer access after a purchase.

use crate::only_file;
use upload_e2e::{MIB, TestApp, TestFile, WAIT, code, fetch, pb, submit_new_item, wait_item};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn other_sellers_cannot_list_or_download_and_granted_users_can() {
    let app = TestApp::spawn().await;
    let file = TestFile::random_zip(MIB);
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_order_service_grants_a_buyer_access_after_a_purchase() {
    let app = TestApp::spawn().await;
    let file = TestFile::random_zip(MIB);
    let (_, _, item) = app
        .stored_item(
            "seller-shop",
            &file,
            ("course.zip", "application/zip"),
            "Course pack",
        )
        .await;
    let (_, _, other) = app
        .stored_item(
            "seller-shop",
            &TestFile::random_zip(MIB / 2),
            ("other.zip", "application/zip"),
            "Other pack",
        )
        .await;
    let buyer = app.client_as(upload_domain::Role::Buyer, "buyer-b").await;
    let download = pb::GetDownloadUrlRequest {
        item_id: item.item_id.clone(),
        file_id: only_file(&item).file_id.clone(),
        version: 1,
    };
    assert_eq!(
        code(buyer.items().get_download_url(download.clone()).await),
        tonic::Code::NotFound,
        "nothing before the purchase"
    );
    let grant = pb::GrantAccessRequest {
        item_id: item.item_id.clone(),
        user_id: "buyer-b".into(),
    };
    // A service without access:grant is refused by the table.
    let catalogue = app
        .service_client(
            "catalogue",
            &[upload_domain::Scope::ItemsRead],
            "seller-shop",
        )
        .await;
    assert_eq!(
        code(catalogue.items().grant_access(grant.clone()).await),
        tonic::Code::PermissionDenied
    );
    // The order service, acting for the seller, grants the buyer the item.
    let orders = app
        .service_client(
            "orders",
            &[upload_domain::Scope::AccessGrant],
            "seller-shop",
        )
        .await;
    orders
        .items()
        .grant_access(grant)
        .await
        .expect("GrantAccess by the order service");
    // The buyer downloads the bytes.
    let link = buyer
        .items()
        .get_download_url(download)
        .await
        .expect("GetDownloadUrl by the buyer")
        .into_inner();
    assert_eq!(
        fetch(&link.url).await.body,
        std::fs::read(&file.path).unwrap()
    );
    // The buyer cannot list another item of the same seller.
    assert_eq!(
        code(
            buyer
                .items()
                .list_versions(pb::ListVersionsRequest {
                    item_id: other.item_id.clone(),
                    file_id: String::new(),
                })
                .await
        ),
        tonic::Code::NotFound
    );
    // Nor call anything a buyer may not.
    assert_eq!(
        code(
            buyer
                .api()
                .create_upload(pb::CreateUploadRequest {
                    file_name: "x.bin".into(),
                    size_bytes: MIB,
                    content_type: "application/octet-stream".into(),
                    ..Default::default()
                })
                .await
        ),
        tonic::Code::PermissionDenied
    );
}
