//! Who may call what, on the real server: every RPC × every role × the caller's
//! own resource and another seller's, each answer compared with what the domain's
//! authorization table says (PERMISSION_DENIED where it refuses, NOT_FOUND for a
//! resource out of reach, anything else where it allows: the call then got past
//! authorization to its handler).

use tonic::Code;
use upload_client::UploadClient;
use upload_domain::{Role, Rpc, Rule, Scope, SellerGroup};
use upload_e2e::{MIB, TestApp, TestFile, pb, submission};

/// One seller's resources: an upload with a part missing, a ready upload, and a
/// stored item with its one file.
struct Resources {
    open_upload: String,
    ready_upload: String,
    item: String,
    file: String,
}

async fn resources(app: &TestApp, seller: &str) -> Resources {
    let small = || TestFile::random_zip(MIB / 4);
    let (_, _, item) = app
        .stored_item(
            seller,
            &small(),
            ("pack.zip", "application/zip"),
            &format!("{seller} pack"),
        )
        .await;
    let (_, ready) = app
        .ready_upload(seller, &small(), "next.zip", "application/zip")
        .await;
    let (_, open) = app
        .upload_parts(seller, &TestFile::random(6 * MIB), Some(&[1]))
        .await;
    Resources {
        open_upload: open.upload_id,
        ready_upload: ready.upload_id,
        item: item.item_id.clone(),
        file: item.files[0].file_id.clone(),
    }
}

/// Calls `rpc` on `on` with a request well-formed enough to reach the handler's
/// ownership check (`tag` makes its idempotency keys); the code it answered
/// (OK when it succeeded).
async fn call(client: &UploadClient, rpc: Rpc, on: &Resources, tag: &str) -> Code {
    let (mut api, mut items) = (client.api(), client.items());
    // Part 2 of the open upload (6 MiB in 5 MiB parts) is the 1 MiB one not sent.
    let part = || pb::PartToSign {
        checksum_sha256: Vec::new(),
        part_number: 2,
        content_md5: vec![7; 16],
        content_length: MIB,
    };
    let upload_id = |id: &str| id.to_owned();
    let answer = match rpc {
        Rpc::CreateUpload => api
            .create_upload(pb::CreateUploadRequest {
                file_name: "matrix.bin".into(),
                size_bytes: MIB,
                content_type: "application/octet-stream".into(),
                ..Default::default()
            })
            .await
            .map(drop),
        Rpc::SignPart => api
            .sign_part(pb::SignPartRequest {
                upload_id: upload_id(&on.open_upload),
                part: Some(part()),
            })
            .await
            .map(drop),
        Rpc::SignParts => api
            .sign_parts(pb::SignPartsRequest {
                upload_id: upload_id(&on.open_upload),
                parts: vec![part()],
            })
            .await
            .map(drop),
        Rpc::ListUploadedParts => api
            .list_uploaded_parts(pb::ListUploadedPartsRequest {
                upload_id: upload_id(&on.open_upload),
            })
            .await
            .map(drop),
        Rpc::CompleteUpload => api
            .complete_upload(pb::CompleteUploadRequest {
                upload_id: upload_id(&on.open_upload),
            })
            .await
            .map(drop),
        Rpc::AbortUpload => api
            .abort_upload(pb::AbortUploadRequest {
                upload_id: upload_id(&on.open_upload),
            })
            .await
            .map(drop),
        Rpc::GetUpload => api
            .get_upload(pb::GetUploadRequest {
                upload_id: upload_id(&on.ready_upload),
                include_history: false,
            })
            .await
            .map(drop),
        Rpc::WatchProgress => api
            .watch_progress(pb::WatchProgressRequest {
                upload_id: upload_id(&on.ready_upload),
            })
            .await
            .map(drop),
        Rpc::SubmitItem => items
            .submit_item(submission(
                &format!("matrix-{tag}"),
                "",
                pb::ItemKind::DigitalFile,
                "Matrix",
                &[(&on.ready_upload, "")],
            ))
            .await
            .map(drop),
        Rpc::GetItem => items
            .get_item(pb::GetItemRequest {
                item_id: on.item.clone(),
            })
            .await
            .map(drop),
        Rpc::WatchItem => items
            .watch_item(pb::WatchItemRequest {
                item_id: on.item.clone(),
            })
            .await
            .map(drop),
        Rpc::ListVersions => items
            .list_versions(pb::ListVersionsRequest {
                item_id: on.item.clone(),
                file_id: String::new(),
            })
            .await
            .map(drop),
        Rpc::SetCurrentVersion => items
            .set_current_version(pb::SetCurrentVersionRequest {
                item_id: on.item.clone(),
                file_id: on.file.clone(),
                version: 1,
            })
            .await
            .map(drop),
        Rpc::GetDownloadUrl => items
            .get_download_url(pb::GetDownloadUrlRequest {
                item_id: on.item.clone(),
                file_id: on.file.clone(),
                version: 1,
            })
            .await
            .map(drop),
        Rpc::GrantAccess => items
            .grant_access(pb::GrantAccessRequest {
                item_id: on.item.clone(),
                user_id: "user-z".into(),
            })
            .await
            .map(drop),
        Rpc::RevokeAccess => items
            .revoke_access(pb::RevokeAccessRequest {
                item_id: on.item.clone(),
                user_id: "user-z".into(),
            })
            .await
            .map(drop),
    };
    answer.err().map_or(Code::Ok, |status| status.code())
}

/// What the table's `rule` means for a call on the caller's own (or granted)
/// resource and on another seller's: refused, hidden, or let through.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Expect {
    Refused,
    Hidden,
    Through,
}

fn expect(rule: Rule, scopes_held: bool, own: bool) -> Expect {
    match rule {
        Rule::Deny => Expect::Refused,
        Rule::ActFor(_) if !scopes_held => Expect::Refused,
        Rule::ReadAny => Expect::Through,
        Rule::Own | Rule::Granted | Rule::ActFor(_) if own => Expect::Through,
        Rule::Own | Rule::Granted | Rule::ActFor(_) => Expect::Hidden,
    }
}

fn matches(expected: Expect, got: Code) -> bool {
    match expected {
        Expect::Refused => got == Code::PermissionDenied,
        Expect::Hidden => got == Code::NotFound,
        Expect::Through => !matches!(
            got,
            Code::PermissionDenied | Code::NotFound | Code::Unauthenticated
        ),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_rpc_for_every_role_on_own_and_other_resources_follows_the_table() {
    let app = TestApp::spawn().await;
    let mine = resources(&app, "seller-own").await;
    let theirs = resources(&app, "seller-other").await;
    let owner = app.client("seller-own", SellerGroup::Standard).await;
    // The buyer and the operator are granted the owner's item, not the other's.
    for user in ["buyer-1", "ops-1"] {
        owner
            .items()
            .grant_access(pb::GrantAccessRequest {
                item_id: mine.item.clone(),
                user_id: user.into(),
            })
            .await
            .expect("GrantAccess");
    }
    let callers: Vec<(&str, Role, bool, UploadClient)> = vec![
        ("seller", Role::Seller, true, owner.clone()),
        (
            "buyer",
            Role::Buyer,
            true,
            app.client_as(Role::Buyer, "buyer-1").await,
        ),
        (
            "service",
            Role::Service,
            true,
            app.service_client("catalogue", Scope::ALL, "seller-own")
                .await,
        ),
        (
            "unscoped-service",
            Role::Service,
            false,
            app.service_client("stranger", &[], "seller-own").await,
        ),
        (
            "ops",
            Role::Ops,
            true,
            app.client_as(Role::Ops, "ops-1").await,
        ),
    ];
    // Calls that end an upload go last, so the others find it open.
    let mut rpcs: Vec<Rpc> = Rpc::ALL.to_vec();
    rpcs.sort_by_key(|r| matches!(r, Rpc::CompleteUpload | Rpc::AbortUpload));

    let (mut wrong, mut cells) = (Vec::new(), 0);
    for rpc in rpcs {
        for (name, role, scopes_held, client) in &callers {
            let rule = upload_domain::rule(rpc, *role);
            // CreateUpload makes a new resource: there is no other's to try.
            let targets: &[(&str, &Resources, bool)] = if rpc == Rpc::CreateUpload {
                &[("own", &mine, true)]
            } else {
                &[("own", &mine, true), ("other", &theirs, false)]
            };
            for (whose, on, own) in targets {
                let expected = expect(rule, *scopes_held, *own);
                let got = call(client, rpc, on, &format!("{name}-{whose}")).await;
                cells += 1;
                if !matches(expected, got) {
                    wrong.push(format!(
                        "{rpc} as {name} on {whose}: expected {expected:?} ({rule:?}), got {got:?}"
                    ));
                }
            }
        }
    }
    println!("authorization matrix: {cells} calls checked");
    assert!(
        wrong.is_empty(),
        "{} wrong:\n{}",
        wrong.len(),
        wrong.join("\n")
    );
    // 16 RPCs, 15 with an own and an other resource, 5 callers.
    assert_eq!(cells, 5 * (1 + 15 * 2));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_service_acts_only_for_whom_it_names() {
    let app = TestApp::spawn().await;
    let mine = resources(&app, "seller-own").await;
    // The catalogue, acting for the owner, submits their ready upload as an item.
    let catalogue = app
        .service_client("catalogue", &[Scope::ItemsSubmit], "seller-own")
        .await;
    let submitted = catalogue
        .items()
        .submit_item(submission(
            "by-catalogue",
            "",
            pb::ItemKind::DigitalFile,
            "Submitted for the seller",
            &[(&mine.ready_upload, "")],
        ))
        .await
        .expect("SubmitItem for the seller")
        .into_inner();
    let item_id = submitted.item.expect("item").item_id;
    let item = upload_e2e::wait_item(
        &app.client("seller-own", SellerGroup::Standard).await,
        &item_id,
        upload_e2e::WAIT,
    )
    .await;
    assert_eq!(item.state, pb::SubmissionState::Stored as i32, "{item:?}");
    // Acting for another seller, the same service reaches nothing of the owner's.
    let for_other = app
        .service_client("catalogue", &[Scope::ItemsRead], "seller-other")
        .await;
    let hidden = for_other
        .items()
        .get_item(pb::GetItemRequest {
            item_id: item_id.clone(),
        })
        .await
        .expect_err("another seller's item");
    assert_eq!(hidden.code(), Code::NotFound);
    // Naming nobody is refused with a message saying how to name someone.
    let token = app.role_token(Role::Service, "catalogue", &[Scope::ItemsRead]);
    let anonymous = app.connect(&token).await;
    let refused = anonymous
        .items()
        .get_item(pb::GetItemRequest { item_id })
        .await
        .expect_err("no one named");
    assert_eq!(refused.code(), Code::InvalidArgument);
    assert!(
        refused.message().contains("x-upload-act-for"),
        "{}",
        refused.message()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_service_acts_only_as_its_delegation_says_and_no_one_else_sends_act_for_headers() {
    let app = TestApp::spawn_with(upload_e2e::AppOptions {
        env: vec![(
            "UPLOAD_SERVICE_ACT_FOR".into(),
            // The template's order service: sellers only, no group.
            "orders=seller;gateway=seller buyer group".into(),
        )],
        ..Default::default()
    })
    .await;
    let mine = resources(&app, "seller-own").await;
    let acting = |subject, role, group| upload_client::ActingFor {
        subject,
        role,
        group,
    };
    let create = |size| pb::CreateUploadRequest {
        file_name: "big.mp4".into(),
        size_bytes: size,
        content_type: "video/mp4".into(),
        ..Default::default()
    };
    let over_standard = 600 * MIB;

    // A seller's or a buyer's token that sends the headers is refused.
    for (role, token) in [
        (Role::Seller, app.token("seller-own", SellerGroup::Standard)),
        (Role::Buyer, app.role_token(Role::Buyer, "buyer-1", &[])),
    ] {
        let sneaky = UploadClient::connect_acting_for(
            &app.endpoint,
            &token,
            acting("seller-own", None, Some("premium")),
            app.harness_ca().map(str::as_bytes),
        )
        .await
        .unwrap();
        let refused = sneaky
            .items()
            .get_item(pb::GetItemRequest {
                item_id: mine.item.clone(),
            })
            .await
            .expect_err("a seller or buyer naming someone");
        assert_eq!(
            refused.code(),
            Code::PermissionDenied,
            "{role}: {refused:?}"
        );
        assert!(refused.message().contains("only a service"), "{refused:?}");
    }

    // The order service may not choose a seller's group: premium is refused.
    let orders_premium = app
        .acting_client(
            "orders",
            &[Scope::UploadsWrite],
            acting("seller-own", None, Some("premium")),
        )
        .await;
    let refused = orders_premium
        .api()
        .create_upload(create(over_standard))
        .await
        .expect_err("the group is not the order service's to state");
    assert_eq!(refused.code(), Code::PermissionDenied, "{refused:?}");
    // Without the header its seller is standard: over the standard limit.
    let orders = app
        .service_client("orders", &[Scope::UploadsWrite], "seller-own")
        .await;
    let refused = orders
        .api()
        .create_upload(create(over_standard))
        .await
        .expect_err("standard sellers stop at 500 MiB");
    assert_eq!(refused.code(), Code::ResourceExhausted, "{refused:?}");
    // The gateway may state it.
    let gateway_premium = app
        .acting_client(
            "gateway",
            &[Scope::UploadsWrite],
            acting("seller-own", Some("seller"), Some("premium")),
        )
        .await;
    gateway_premium
        .api()
        .create_upload(create(over_standard))
        .await
        .expect("a premium seller, as the gateway says");

    // The template's order service holds access:grant without downloads:read: it
    // grants an item to a user of its own naming, but cannot download it, neither
    // for the seller nor as that buyer.
    let orders = app
        .service_client("orders", &[Scope::AccessGrant], "seller-own")
        .await;
    orders
        .items()
        .grant_access(pb::GrantAccessRequest {
            item_id: mine.item.clone(),
            user_id: "orders".into(),
        })
        .await
        .expect("GrantAccess for the seller");
    let download = pb::GetDownloadUrlRequest {
        item_id: mine.item.clone(),
        file_id: mine.file.clone(),
        version: 0,
    };
    let refused = orders
        .items()
        .get_download_url(download.clone())
        .await
        .expect_err("no downloads:read");
    assert_eq!(refused.code(), Code::PermissionDenied, "{refused:?}");
    let as_buyer = app
        .acting_client(
            "orders",
            &[Scope::AccessGrant, Scope::DownloadsRead],
            acting("orders", Some("buyer"), None),
        )
        .await;
    let refused = as_buyer
        .items()
        .get_download_url(download.clone())
        .await
        .expect_err("the order service acts for sellers only");
    assert_eq!(refused.code(), Code::PermissionDenied, "{refused:?}");
    assert!(refused.message().contains("buyer"), "{refused:?}");

    // A service delegated for buyers reaches only what the buyer was granted, and
    // nothing a buyer may not call.
    let gateway_buyer = app
        .acting_client(
            "gateway",
            &[Scope::DownloadsRead, Scope::UploadsWrite],
            acting("orders", Some("buyer"), None),
        )
        .await;
    gateway_buyer
        .items()
        .get_download_url(download)
        .await
        .expect("the buyer was granted the item");
    let refused = gateway_buyer
        .api()
        .create_upload(create(MIB))
        .await
        .expect_err("a buyer creates no uploads");
    assert_eq!(refused.code(), Code::PermissionDenied, "{refused:?}");
    // A service configured for no one acts for no one.
    let stranger = app
        .service_client("stranger", &[Scope::UploadsWrite], "seller-own")
        .await;
    let refused = stranger
        .api()
        .create_upload(create(MIB))
        .await
        .expect_err("no delegation");
    assert_eq!(refused.code(), Code::PermissionDenied, "{refused:?}");
}
