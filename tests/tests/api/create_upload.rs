//! CreateUpload: limits by seller group, validation, the type allow-list, unique
//! temp keys, and the buckets' rules.

use std::collections::HashSet;
use upload_domain::SellerGroup;
use upload_e2e::{AppOptions, MIB, TestApp, code, pb};

fn request(size: u64) -> pb::CreateUploadRequest {
    pb::CreateUploadRequest {
        part_checksum: 0,
        file_name: "movie.mp4".into(),
        size_bytes: size,
        content_type: "video/mp4".into(),
        part_size_bytes: 0,
        idempotency_key: String::new(),
    }
}

fn no_worker() -> AppOptions {
    AppOptions {
        worker: false,
        ..Default::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn create_enforces_the_group_size_limit() {
    let app = TestApp::spawn_with(no_worker()).await;
    let standard = app.client("seller-std", SellerGroup::Standard).await;
    let premium = app.client("seller-pro", SellerGroup::Premium).await;

    let over = standard.api().create_upload(request(500 * MIB + 1)).await;
    let status = over.expect_err("over the standard limit");
    assert_eq!(status.code(), tonic::Code::ResourceExhausted);
    assert!(
        status.message().contains("standard"),
        "{}",
        status.message()
    );
    assert_eq!(
        app.count("SELECT count(*) FROM uploads").await,
        0,
        "a refused upload leaves no row"
    );

    standard
        .api()
        .create_upload(request(500 * MIB))
        .await
        .expect("standard at its limit");
    let big = premium
        .api()
        .create_upload(request(1024 * MIB))
        .await
        .expect("premium may go to 1 GiB");
    assert_eq!(big.into_inner().upload.unwrap().part_count, 64);
    assert_eq!(
        code(premium.api().create_upload(request(1024 * MIB + 1)).await),
        tonic::Code::ResourceExhausted
    );
    assert_eq!(app.count("SELECT count(*) FROM uploads").await, 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn create_refuses_bad_input_with_invalid_argument_and_changes_nothing() {
    let app = TestApp::spawn_with(no_worker()).await;
    let client = app.client("seller-bad", SellerGroup::Standard).await;
    let cases = [
        (
            "empty name",
            pb::CreateUploadRequest {
                part_checksum: 0,
                file_name: String::new(),
                ..request(MIB)
            },
        ),
        (
            "path in name",
            pb::CreateUploadRequest {
                part_checksum: 0,
                file_name: "../etc/passwd".into(),
                ..request(MIB)
            },
        ),
        (
            "bad type",
            pb::CreateUploadRequest {
                part_checksum: 0,
                content_type: "video".into(),
                ..request(MIB)
            },
        ),
        ("zero size", request(0)),
        (
            "tiny parts",
            pb::CreateUploadRequest {
                part_checksum: 0,
                part_size_bytes: MIB,
                ..request(100 * MIB)
            },
        ),
        (
            "huge parts",
            pb::CreateUploadRequest {
                part_checksum: 0,
                part_size_bytes: 6 * 1024 * MIB,
                ..request(100 * MIB)
            },
        ),
    ];
    for (what, req) in cases {
        let status = client.api().create_upload(req).await.expect_err(what);
        assert_eq!(
            status.code(),
            tonic::Code::InvalidArgument,
            "{what}: {status:?}"
        );
        assert!(!status.message().is_empty(), "{what}");
    }
    assert_eq!(app.count("SELECT count(*) FROM uploads").await, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_concurrent_creates_get_a_thousand_distinct_temp_keys() {
    let app = TestApp::spawn_with(no_worker()).await;
    let client = app.client("seller-many", SellerGroup::Standard).await;
    let mut calls = tokio::task::JoinSet::new();
    for i in 0..1000 {
        let api = client.api();
        calls.spawn(async move {
            // The same file name every time: keys must not depend on it.
            let mut req = request(10 * MIB + i);
            req.file_name = "same-name.mp4".into();
            api.clone()
                .create_upload(req)
                .await
                .map(|r| r.into_inner().upload.unwrap().upload_id)
        });
    }
    let mut ids = HashSet::new();
    while let Some(done) = calls.join_next().await {
        ids.insert(done.unwrap().expect("CreateUpload"));
    }
    assert_eq!(ids.len(), 1000);
    assert_eq!(
        app.count("SELECT count(DISTINCT temp_key) FROM uploads")
            .await,
        1000
    );
    assert_eq!(
        app.count("SELECT count(DISTINCT store_upload_id) FROM uploads")
            .await,
        1000
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn buckets_carry_their_lifecycle_rules() {
    let app = TestApp::spawn_with(no_worker()).await;
    let store = &app.store;
    let rules = |bucket| async move {
        store
            .client()
            .get_bucket_lifecycle_configuration()
            .bucket(store.bucket_name(bucket))
            .send()
            .await
            .expect("lifecycle rules are set")
            .rules()
            .to_vec()
    };
    let quarantine = rules(upload_storage::Bucket::Quarantine).await;
    assert!(
        quarantine
            .iter()
            .any(|r| r.expiration().and_then(|e| e.days()) == Some(4)),
        "quarantine must expire objects after 4 days: {quarantine:?}"
    );
    let temp = rules(upload_storage::Bucket::Temp).await;
    assert!(
        temp.iter().any(|r| r
            .abort_incomplete_multipart_upload()
            .and_then(|a| a.days_after_initiation())
            == Some(1)),
        "temp must abort incomplete uploads after 1 day: {temp:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_type_off_the_allow_list_is_refused_at_create_and_nothing_is_made() {
    let app = TestApp::spawn().await;
    let client = app
        .client("seller-exe", upload_domain::SellerGroup::Standard)
        .await;
    let err = client
        .create("setup.exe", 10_000_000, "application/x-msdownload", None)
        .await
        .expect_err("refused");
    let status = match err {
        upload_client::ClientError::Rpc(s) => s,
        other => panic!("expected a gRPC status, got {other:?}"),
    };
    assert_eq!(status.code(), tonic::Code::InvalidArgument);
    assert!(
        status.message().contains("application/x-msdownload"),
        "{}",
        status.message()
    );
    assert_eq!(app.count("SELECT count(*) FROM uploads").await, 0);
}

/// CreateUpload of `size` bytes under idempotency key `key`: the upload, or the refusal.
async fn create_keyed(
    client: &upload_client::UploadClient,
    key: &str,
    size: u64,
) -> Result<pb::Upload, tonic::Status> {
    let req = pb::CreateUploadRequest {
        part_checksum: 0,
        idempotency_key: key.into(),
        ..request(size)
    };
    let answer = client.api().create_upload(req).await?.into_inner();
    Ok(answer.upload.expect("an upload in the answer"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retried_create_with_its_key_gets_the_same_upload_and_nothing_more() {
    let app = TestApp::spawn_with(no_worker()).await;
    let client = app.client("seller-retry", SellerGroup::Standard).await;
    let first = create_keyed(&client, "movie-1", 20 * MIB)
        .await
        .expect("CreateUpload");
    let before = app.fingerprint().await;
    // The answer was lost; the client asks again, then five times at once.
    let again = create_keyed(&client, "movie-1", 20 * MIB)
        .await
        .expect("the retry");
    assert_eq!(again.upload_id, first.upload_id);
    assert_eq!(again.part_count, first.part_count);
    let retries = (0..5).map(|_| create_keyed(&client, "movie-1", 20 * MIB));
    for answer in futures::future::join_all(retries).await {
        assert_eq!(answer.expect("a retry").upload_id, first.upload_id);
    }
    let after = app.fingerprint().await;
    assert_eq!(
        after, before,
        "a retry changes nothing: no row, no multipart upload"
    );
    assert_eq!(app.count("SELECT count(*) FROM uploads").await, 1);

    // Concurrent first calls with a new key: one upload, the others' store
    // multipart uploads aborted.
    let racing = (0..6).map(|_| create_keyed(&client, "movie-2", 30 * MIB));
    let ids: HashSet<String> = futures::future::join_all(racing)
        .await
        .into_iter()
        .map(|a| a.expect("create").upload_id)
        .collect();
    assert_eq!(ids.len(), 1, "one upload for one key: {ids:?}");
    assert_eq!(app.count("SELECT count(*) FROM uploads").await, 2);
    let multipart = app
        .store
        .client()
        .list_multipart_uploads()
        .bucket(app.bucket(upload_storage::Bucket::Temp))
        .send()
        .await
        .expect("listing multipart uploads")
        .uploads
        .unwrap_or_default()
        .len();
    assert_eq!(multipart, 2, "the losers' multipart uploads were aborted");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_reused_for_another_file_is_already_exists_and_keys_are_per_seller() {
    let app = TestApp::spawn_with(no_worker()).await;
    let client = app.client("seller-key", SellerGroup::Standard).await;
    let first = create_keyed(&client, "k-1", 20 * MIB)
        .await
        .expect("CreateUpload");
    let before = app.fingerprint().await;
    let refused = create_keyed(&client, "k-1", 21 * MIB)
        .await
        .expect_err("another size under a used key");
    assert_eq!(refused.code(), tonic::Code::AlreadyExists, "{refused:?}");
    assert!(
        refused.message().contains("k-1") && refused.message().contains(&first.upload_id),
        "{}",
        refused.message()
    );
    let bad = create_keyed(&client, "k\n1", 20 * MIB)
        .await
        .expect_err("a key with a control character");
    assert_eq!(bad.code(), tonic::Code::InvalidArgument, "{bad:?}");
    assert!(
        bad.message().contains("idempotency_key"),
        "{}",
        bad.message()
    );
    assert_eq!(app.fingerprint().await, before, "refusals change nothing");
    // Another seller's same key is theirs alone.
    let other = app.client("seller-other", SellerGroup::Standard).await;
    let theirs = create_keyed(&other, "k-1", 20 * MIB)
        .await
        .expect("another seller's key");
    assert_ne!(theirs.upload_id, first.upload_id);
}

/// The stable code and the retry delay a refusal's details carry.
fn details(status: &tonic::Status) -> (Option<String>, Option<std::time::Duration>) {
    use tonic_types::StatusExt;
    let details = status.get_error_details();
    (
        details.error_info().map(|i| i.reason.clone()),
        details.retry_info().and_then(|r| r.retry_delay),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn creates_beyond_the_callers_minute_are_refused_with_when_to_retry() {
    let app = TestApp::spawn_with(AppOptions {
        env: vec![("UPLOAD_CREATES_PER_MINUTE".into(), "3".into())],
        ..no_worker()
    })
    .await;
    let client = app.client("seller-busy", SellerGroup::Standard).await;
    let mut made = Vec::new();
    for n in 0..3 {
        made.push(
            create_keyed(&client, &format!("busy-{n}"), MIB)
                .await
                .expect("within the minute's allowance"),
        );
    }
    let before = app.fingerprint().await;
    let refused = create_keyed(&client, "busy-3", MIB)
        .await
        .expect_err("the fourth in a minute");
    assert_eq!(refused.code(), tonic::Code::ResourceExhausted);
    assert!(
        refused.message().contains("3 a minute"),
        "{}",
        refused.message()
    );
    let (reason, retry) = details(&refused);
    assert_eq!(
        reason.as_deref(),
        Some(upload_domain::Refusal::CreateRateExceeded.as_str())
    );
    // Three a minute: the next one is at most 20 s away.
    let retry = retry.expect("RetryInfo");
    assert!(
        retry >= std::time::Duration::from_secs(1) && retry <= std::time::Duration::from_secs(20),
        "{retry:?}"
    );
    // A retry of a create that was answered costs nothing and is not refused.
    let again = create_keyed(&client, "busy-0", MIB).await.expect("a retry");
    assert_eq!(again.upload_id, made[0].upload_id);
    before.assert_unchanged(&app.fingerprint().await, "a refused create");
    // Another seller has an allowance of their own.
    let other = app.client("seller-calm", SellerGroup::Standard).await;
    create_keyed(&other, "calm-0", MIB)
        .await
        .expect("another seller's create");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_eleventh_unfinished_upload_of_a_caller_limited_to_ten_is_refused() {
    let app = TestApp::spawn_with(AppOptions {
        env: vec![("UPLOAD_MAX_OPEN_UPLOADS".into(), "10".into())],
        ..no_worker()
    })
    .await;
    let client = app.client("seller-open", SellerGroup::Standard).await;
    let mut open = Vec::new();
    for n in 0..10 {
        open.push(
            create_keyed(&client, &format!("open-{n}"), MIB)
                .await
                .expect("within the limit"),
        );
    }
    let before = app.fingerprint().await;
    let refused = create_keyed(&client, "open-10", MIB)
        .await
        .expect_err("the eleventh unfinished upload");
    assert_eq!(refused.code(), tonic::Code::ResourceExhausted);
    assert!(
        refused.message().contains("complete or abort"),
        "{}",
        refused.message()
    );
    let (reason, retry) = details(&refused);
    assert_eq!(
        reason.as_deref(),
        Some(upload_domain::Refusal::TooManyOpenUploads.as_str())
    );
    assert!(retry.is_some(), "RetryInfo");
    before.assert_unchanged(&app.fingerprint().await, "a refused create");
    // Other sellers are unaffected.
    let other = app.client("seller-elsewhere", SellerGroup::Standard).await;
    create_keyed(&other, "elsewhere-0", MIB)
        .await
        .expect("another seller's create");
    // An aborted upload makes room.
    client
        .api()
        .abort_upload(pb::AbortUploadRequest {
            upload_id: open.remove(0).upload_id,
        })
        .await
        .expect("AbortUpload");
    create_keyed(&client, "open-10", MIB)
        .await
        .expect("room again after an abort");
}
