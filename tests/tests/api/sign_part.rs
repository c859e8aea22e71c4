//! SignPart / SignParts: what the signature pins, and what the service refuses.

use md5::Digest;
use upload_domain::SellerGroup;
use upload_e2e::{MIB, TestApp, code, pb};

fn part(n: u32, body: &[u8]) -> pb::PartToSign {
    pb::PartToSign {
        checksum_sha256: Vec::new(),
        part_number: n,
        content_md5: md5::Md5::digest(body).to_vec(),
        content_length: body.len() as u64,
    }
}

/// The store's answer to a PUT: its status, or `None` when it hung up on the
/// request (Garage refuses a bad signature before reading the body).
async fn put(signed: &pb::SignedPart, url: &str, body: Vec<u8>) -> Option<reqwest::StatusCode> {
    let mut req = reqwest::Client::new().put(url).body(body);
    for h in &signed.headers {
        req = req.header(h.name.as_str(), h.value.as_str());
    }
    req.send().await.ok().map(|r| r.status())
}

fn refused(answer: Option<reqwest::StatusCode>) -> bool {
    answer.is_none_or(|s| s.is_client_error())
}

/// The headers a signed URL names as signed (`X-Amz-SignedHeaders`).
fn signed_headers(signed: &pb::SignedPart) -> &str {
    signed
        .url
        .split('&')
        .find_map(|kv| kv.strip_prefix("X-Amz-SignedHeaders="))
        .expect("signed headers in the URL")
}

/// PUTs `body` with one byte flipped at `at` through `signed`: the store must refuse it.
async fn assert_swapped_body_refused(signed: &pb::SignedPart, body: &[u8], at: usize) {
    let mut swapped = body.to_vec();
    swapped[at] ^= 0xff;
    let status = put(signed, &signed.url, swapped).await;
    assert!(
        refused(status),
        "a swapped body must be refused, got {status:?}"
    );
}

async fn sign(
    app: &TestApp,
    upload_id: &str,
    p: pb::PartToSign,
) -> Result<pb::SignedPart, tonic::Status> {
    let client = app.client("seller-sign", SellerGroup::Standard).await;
    client
        .api()
        .sign_part(pb::SignPartRequest {
            upload_id: upload_id.to_owned(),
            part: Some(p),
        })
        .await
        .map(|r| r.into_inner().part.expect("signed part"))
}

async fn new_upload(app: &TestApp, size: u64) -> pb::Upload {
    app.client("seller-sign", SellerGroup::Standard)
        .await
        .create("clip.mp4", size, "video/mp4", Some(5 * MIB))
        .await
        .expect("CreateUpload")
}

fn no_worker() -> upload_e2e::AppOptions {
    upload_e2e::AppOptions {
        worker: false,
        ..Default::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signature_pins_content_md5_and_length() {
    let app = TestApp::spawn_with(no_worker()).await;
    let upload = new_upload(&app, 10 * MIB).await;
    let body = vec![1u8; (5 * MIB) as usize];
    let signed = sign(&app, &upload.upload_id, part(1, &body)).await.unwrap();
    let signed_headers = signed_headers(&signed);
    assert!(signed_headers.contains("content-md5"), "{signed_headers}");
    assert!(
        signed_headers.contains("content-length"),
        "{signed_headers}"
    );
    assert!(
        signed
            .headers
            .iter()
            .any(|h| h.name.eq_ignore_ascii_case("content-md5"))
    );
    assert_eq!(signed.method, "PUT");
    assert!(signed.expires_at.is_some());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn store_rejects_a_body_that_differs_from_the_signed_md5() {
    let app = TestApp::spawn_with(no_worker()).await;
    let upload = new_upload(&app, 10 * MIB).await;
    let body = vec![1u8; (5 * MIB) as usize];
    let signed = sign(&app, &upload.upload_id, part(1, &body)).await.unwrap();
    assert_swapped_body_refused(&signed, &body, 12345).await;
    // The genuine body still goes through.
    assert!(
        put(&signed, &signed.url, body)
            .await
            .is_some_and(|s| s.is_success())
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn store_rejects_a_url_whose_part_number_was_changed() {
    let app = TestApp::spawn_with(no_worker()).await;
    let upload = new_upload(&app, 10 * MIB).await;
    let body = vec![2u8; (5 * MIB) as usize];
    let signed = sign(&app, &upload.upload_id, part(1, &body)).await.unwrap();
    assert!(signed.url.contains("partNumber=1"), "{}", signed.url);
    let forged = signed.url.replace("partNumber=1", "partNumber=2");
    let status = put(&signed, &forged, body.clone()).await;
    assert!(
        refused(status),
        "a forged part number must be refused, got {status:?}"
    );
    let client = app.client("seller-sign", SellerGroup::Standard).await;
    assert_eq!(
        client.missing_parts(&upload.upload_id).await.unwrap(),
        vec![1, 2]
    );
    // The URL as signed works, for the part it names.
    assert!(
        put(&signed, &signed.url, body)
            .await
            .is_some_and(|s| s.is_success())
    );
    assert_eq!(
        client.missing_parts(&upload.upload_id).await.unwrap(),
        vec![2]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn parts_outside_the_plan_are_invalid_and_record_nothing() {
    let app = TestApp::spawn_with(no_worker()).await;
    let upload = new_upload(&app, 10 * MIB + 1).await;
    assert_eq!(upload.part_count, 3);
    let full = vec![0u8; (5 * MIB) as usize];
    let cases = [
        ("part 0", part(0, &full)),
        ("part past the end", part(4, &full)),
        ("short middle part", part(2, &full[..(4 * MIB) as usize])),
        ("last part too long", part(3, &full[..2])),
        (
            "md5 of 15 bytes",
            pb::PartToSign {
                checksum_sha256: Vec::new(),
                part_number: 1,
                content_md5: vec![0; 15],
                content_length: 5 * MIB,
            },
        ),
    ];
    for (what, p) in cases {
        let status = sign(&app, &upload.upload_id, p).await.expect_err(what);
        assert_eq!(
            status.code(),
            tonic::Code::InvalidArgument,
            "{what}: {status:?}"
        );
        assert!(!status.message().is_empty());
    }
    // The last part may be short: exactly one byte here.
    sign(&app, &upload.upload_id, part(3, &full[..1]))
        .await
        .expect("short last part");
    assert_eq!(app.count("SELECT count(*) FROM upload_parts").await, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batch_signing_is_all_or_nothing() {
    let app = TestApp::spawn_with(no_worker()).await;
    let upload = new_upload(&app, 15 * MIB).await;
    let client = app.client("seller-sign", SellerGroup::Standard).await;
    let full = vec![3u8; (5 * MIB) as usize];
    let bad = client
        .api()
        .sign_parts(pb::SignPartsRequest {
            upload_id: upload.upload_id.clone(),
            parts: vec![part(1, &full), part(2, &full), part(9, &full)],
        })
        .await;
    assert_eq!(code(bad), tonic::Code::InvalidArgument);
    let duplicate = client
        .api()
        .sign_parts(pb::SignPartsRequest {
            upload_id: upload.upload_id.clone(),
            parts: vec![part(1, &full), part(1, &full)],
        })
        .await;
    assert_eq!(code(duplicate), tonic::Code::InvalidArgument);
    assert_eq!(app.count("SELECT count(*) FROM upload_parts").await, 0);

    let ok = client
        .api()
        .sign_parts(pb::SignPartsRequest {
            upload_id: upload.upload_id.clone(),
            parts: vec![part(1, &full), part(2, &full), part(3, &full)],
        })
        .await
        .expect("batch")
        .into_inner();
    assert_eq!(
        ok.parts.iter().map(|p| p.part_number).collect::<Vec<_>>(),
        vec![1, 2, 3]
    );
    assert_eq!(app.count("SELECT count(*) FROM upload_parts").await, 3);
    assert_eq!(
        app.count("SELECT count(*) FROM uploads WHERE state = 'uploading'")
            .await,
        1,
        "the first signed part moves the upload to uploading"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signed_urls_expire_after_the_configured_time() {
    let app = TestApp::spawn_with(upload_e2e::AppOptions {
        worker: false,
        // Three seconds: a URL's date is in whole seconds, so its life as seen from
        // here is up to one second shorter than that (a one-second life could be
        // over before the fresh PUT below, on a busy machine).
        env: vec![("UPLOAD_SIGN_EXPIRY_SECS".into(), "3".into())],
        ..Default::default()
    })
    .await;
    // One small part: the store reads the whole body before it answers.
    let upload = new_upload(&app, 1024).await;
    let body = vec![4u8; 1024];
    // Positive control: a URL used at once works.
    let fresh = sign(&app, &upload.upload_id, part(1, &body)).await.unwrap();
    let status = put(&fresh, &fresh.url, body.clone()).await;
    assert_eq!(
        status,
        Some(reqwest::StatusCode::OK),
        "a fresh URL must work"
    );
    // The same part signed again for other bytes, used after it expired.
    let other = vec![5u8; 1024];
    let late = sign(&app, &upload.upload_id, part(1, &other))
        .await
        .unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(4500)).await;
    let status = put(&late, &late.url, other).await;
    assert!(
        status.is_some_and(|s| s.is_client_error()),
        "an expired URL must be refused by the store, got {status:?}"
    );
    // The store still holds the part sent while the URL was fresh.
    let held = app.first_upload_parts().await.expect("ListParts");
    assert_eq!(held.len(), 1);
    assert_eq!(held[0].etag, hex::encode(md5::Md5::digest(&body)));
}

/// An upload created with `PART_CHECKSUM_SHA256` for seller-sign, in 5 MiB parts.
async fn new_sha256_upload(app: &TestApp, size: u64) -> pb::Upload {
    app.client("seller-sign", SellerGroup::Standard)
        .await
        .api()
        .create_upload(pb::CreateUploadRequest {
            file_name: "clip.mp4".into(),
            size_bytes: size,
            content_type: "video/mp4".into(),
            part_size_bytes: 5 * MIB,
            idempotency_key: String::new(),
            part_checksum: pb::PartChecksum::Sha256 as i32,
        })
        .await
        .expect("CreateUpload")
        .into_inner()
        .upload
        .expect("upload")
}

fn sha256_part(n: u32, body: &[u8]) -> pb::PartToSign {
    use sha2::Digest as _;
    pb::PartToSign {
        part_number: n,
        content_md5: Vec::new(),
        content_length: body.len() as u64,
        checksum_sha256: sha2::Sha256::digest(body).to_vec(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sha256_upload_pins_each_part_by_its_sha256_and_the_store_refuses_another_body() {
    let app = TestApp::spawn_with(no_worker()).await;
    let upload = new_sha256_upload(&app, 10 * MIB).await;
    assert_eq!(upload.part_checksum, pb::PartChecksum::Sha256 as i32);
    let body = vec![3u8; (5 * MIB) as usize];
    let signed = sign(&app, &upload.upload_id, sha256_part(1, &body))
        .await
        .unwrap();
    let signed_headers = signed_headers(&signed);
    assert!(
        signed_headers.contains("x-amz-checksum-sha256") && !signed_headers.contains("content-md5"),
        "{signed_headers}"
    );
    // A swapped body is refused by the store, the genuine one taken.
    assert_swapped_body_refused(&signed, &body, 777).await;
    // Without the signed checksum header the URL does not work either.
    let bare = reqwest::Client::new()
        .put(&signed.url)
        .body(body.clone())
        .send()
        .await
        .ok()
        .map(|r| r.status());
    assert!(refused(bare), "a PUT without the checksum header: {bare:?}");
    assert!(
        put(&signed, &signed.url, body.clone())
            .await
            .is_some_and(|s| s.is_success())
    );
    // What the store holds is listed with the SHA-256 it verified.
    let client = app.client("seller-sign", SellerGroup::Standard).await;
    let listed = client
        .api()
        .list_uploaded_parts(pb::ListUploadedPartsRequest {
            upload_id: upload.upload_id.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(listed.missing_part_numbers, vec![2]);
    assert_eq!(listed.parts.len(), 1);
    assert_eq!(
        listed.parts[0].checksum_sha256,
        sha256_part(1, &body).checksum_sha256
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_part_with_the_other_digest_than_its_upload_s_is_refused_and_nothing_recorded() {
    let app = TestApp::spawn_with(no_worker()).await;
    let body = vec![4u8; (5 * MIB) as usize];
    let cases = [
        // A SHA-256 upload given an MD5, and an MD5 upload given a SHA-256.
        (
            new_sha256_upload(&app, 10 * MIB).await,
            part(1, &body),
            "checksum_sha256",
        ),
        (
            new_upload(&app, 10 * MIB).await,
            sha256_part(1, &body),
            "content_md5",
        ),
    ];
    for (upload, wrong, field) in cases {
        let status = sign(&app, &upload.upload_id, wrong).await.unwrap_err();
        assert_eq!(status.code(), tonic::Code::InvalidArgument, "{status:?}");
        assert!(status.message().contains(field), "{}", status.message());
        assert_eq!(
            app.count(&format!(
                "SELECT count(*) FROM upload_parts WHERE upload_id = '{}'",
                upload.upload_id
            ))
            .await,
            0,
            "nothing recorded"
        );
    }
}
