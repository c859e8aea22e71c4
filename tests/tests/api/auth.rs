//! Authentication and ownership: every call needs a valid token, and a seller
//! reaches only their own uploads, without learning whether others' exist.

use futures::StreamExt;
use tonic::metadata::MetadataValue;
use upload_domain::SellerGroup;
use upload_e2e::{AppOptions, MIB, TestApp, code, pb};
use upload_proto::v1::upload_service_client::UploadServiceClient;

async fn raw(app: &TestApp) -> UploadServiceClient<tonic::transport::Channel> {
    UploadServiceClient::new(app.channel().await)
}

fn create() -> pb::CreateUploadRequest {
    pb::CreateUploadRequest {
        part_checksum: 0,
        file_name: "a.mp4".into(),
        size_bytes: 10 * MIB,
        content_type: "video/mp4".into(),
        part_size_bytes: 0,
        idempotency_key: String::new(),
    }
}

fn with_token<T>(msg: T, token: &str) -> tonic::Request<T> {
    let mut req = tonic::Request::new(msg);
    let value: MetadataValue<_> = format!("Bearer {token}").parse().unwrap();
    req.metadata_mut().insert("authorization", value);
    req
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missing_forged_or_expired_tokens_are_unauthenticated() {
    let app = TestApp::spawn_with(AppOptions {
        worker: false,
        ..Default::default()
    })
    .await;
    let mut api = raw(&app).await;
    assert_eq!(
        code(api.create_upload(create()).await),
        tonic::Code::Unauthenticated
    );

    let forger = upload_server::auth::TokenKeys::new("not-the-server-secret-0123456789abcdef");
    let forged = forger
        .mint(
            &"seller-a".parse().unwrap(),
            SellerGroup::Premium,
            std::time::Duration::from_secs(60),
        )
        .unwrap();
    assert_eq!(
        code(api.create_upload(with_token(create(), &forged)).await),
        tonic::Code::Unauthenticated
    );
    assert_eq!(
        code(api.create_upload(with_token(create(), "garbage")).await),
        tonic::Code::Unauthenticated
    );

    let expired = app
        .keys
        .mint(
            &"seller-a".parse().unwrap(),
            SellerGroup::Standard,
            std::time::Duration::ZERO,
        )
        .unwrap();
    tokio::time::sleep(std::time::Duration::from_secs(6)).await;
    let status = api
        .create_upload(with_token(create(), &expired))
        .await
        .expect_err("expired");
    assert_eq!(status.code(), tonic::Code::Unauthenticated);
    assert!(status.message().contains("expired"), "{}", status.message());
    assert_eq!(app.count("SELECT count(*) FROM uploads").await, 0);

    let good = app.token("seller-a", SellerGroup::Standard);
    api.create_upload(with_token(create(), &good))
        .await
        .expect("a valid token works");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_seller_cannot_sign_list_complete_abort_get_or_watch() {
    let app = TestApp::spawn_with(AppOptions {
        worker: false,
        ..Default::default()
    })
    .await;
    let owner = app.client("owner", SellerGroup::Standard).await;
    let upload = owner
        .create("mine.mp4", 10 * MIB, "video/mp4", None)
        .await
        .unwrap();
    let id = upload.upload_id.clone();
    let other = app.client("intruder", SellerGroup::Premium).await;
    let mut api = other.api();
    let part = pb::PartToSign {
        checksum_sha256: Vec::new(),
        part_number: 1,
        content_md5: vec![0; 16],
        content_length: 10 * MIB,
    };

    let not_found = |status: tonic::Status| {
        assert_eq!(status.code(), tonic::Code::NotFound, "{status:?}");
        status.message().to_owned()
    };
    let m1 = not_found(
        api.sign_part(pb::SignPartRequest {
            upload_id: id.clone(),
            part: Some(part.clone()),
        })
        .await
        .unwrap_err(),
    );
    not_found(
        api.sign_parts(pb::SignPartsRequest {
            upload_id: id.clone(),
            parts: vec![part],
        })
        .await
        .unwrap_err(),
    );
    not_found(
        api.list_uploaded_parts(pb::ListUploadedPartsRequest {
            upload_id: id.clone(),
        })
        .await
        .unwrap_err(),
    );
    not_found(
        api.complete_upload(pb::CompleteUploadRequest {
            upload_id: id.clone(),
        })
        .await
        .unwrap_err(),
    );
    not_found(
        api.abort_upload(pb::AbortUploadRequest {
            upload_id: id.clone(),
        })
        .await
        .unwrap_err(),
    );
    not_found(
        api.get_upload(pb::GetUploadRequest {
            upload_id: id.clone(),
            include_history: false,
        })
        .await
        .unwrap_err(),
    );
    not_found(
        api.watch_progress(pb::WatchProgressRequest {
            upload_id: id.clone(),
        })
        .await
        .unwrap_err(),
    );

    // Someone else's upload and a missing one look the same.
    let unknown = uuid::Uuid::now_v7().to_string();
    let m2 = not_found(
        api.get_upload(pb::GetUploadRequest {
            upload_id: unknown.clone(),
            include_history: false,
        })
        .await
        .unwrap_err(),
    );
    assert_eq!(m1.replace(&id, "ID"), m2.replace(&unknown, "ID"));

    // Nothing changed for the owner.
    assert_eq!(app.count("SELECT count(*) FROM upload_parts").await, 0);
    let mine = owner.get(&id).await.unwrap().upload.unwrap();
    assert_eq!(mine.state, pb::UploadState::Created as i32);
    let mut watch = owner.watch(&id).await.expect("the owner may watch");
    assert!(watch.next().await.unwrap().is_ok());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_is_open_without_a_token() {
    let app = TestApp::spawn_with(AppOptions {
        worker: false,
        ..Default::default()
    })
    .await;
    let channel = app.channel().await;
    let mut health = tonic_health::pb::health_client::HealthClient::new(channel);
    let res = health
        .check(tonic_health::pb::HealthCheckRequest {
            service: "upload.v1.UploadService".into(),
        })
        .await
        .expect("health check");
    assert_eq!(
        res.into_inner().status,
        tonic_health::pb::health_check_response::ServingStatus::Serving as i32
    );
}

/// The services the reflection endpoint of `$version` (`v1` or `v1alpha`, a
/// module of `tonic_reflection::pb`) lists over `$channel`. The two versions have
/// the same messages in different modules, hence a macro.
macro_rules! listed_services {
    ($version:ident, $channel:expr) => {{
        use tonic_reflection::pb::$version::{
            ServerReflectionRequest, server_reflection_client::ServerReflectionClient,
            server_reflection_request::MessageRequest, server_reflection_response::MessageResponse,
        };
        let request = ServerReflectionRequest {
            message_request: Some(MessageRequest::ListServices(String::new())),
            ..Default::default()
        };
        let mut answers = ServerReflectionClient::new($channel)
            .server_reflection_info(futures::stream::iter([request]))
            .await
            .expect(stringify!($version))
            .into_inner();
        match answers
            .next()
            .await
            .expect("an answer")
            .expect("a listing")
            .message_response
        {
            Some(MessageResponse::ListServicesResponse(list)) => list
                .service
                .into_iter()
                .map(|s| s.name)
                .collect::<Vec<String>>(),
            other => panic!("{} listed no services: {other:?}", stringify!($version)),
        }
    }};
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reflection_answers_in_v1_and_v1alpha_without_a_token() {
    let app = TestApp::spawn_with(AppOptions {
        worker: false,
        ..Default::default()
    })
    .await;
    let listings = [
        ("v1", listed_services!(v1, app.channel().await)),
        ("v1alpha", listed_services!(v1alpha, app.channel().await)),
    ];
    for (version, names) in listings {
        for ours in ["upload.v1.UploadService", "upload.v1.ItemService"] {
            assert!(
                names.iter().any(|n| n == ours),
                "{version} lacks {ours}: {names:?}"
            );
        }
    }
}
