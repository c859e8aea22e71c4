//! Where the store's ETags are not MD5s (SSE-KMS: `UPLOAD_S3_ETAG_IS_MD5=false`),
//! completion checks the parts' sizes only and the scan checks each part's bytes
//! against the MD5 signed for it: an honest upload is ready, one whose part 2 is
//! not the bytes last signed fails with `part_mismatch`, naming the part.

use std::time::Duration;

use md5::Digest;
use upload_domain::FailureCode;
use upload_e2e::{AppOptions, MIB, TestApp, TestFile, pb};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_md5_etags_the_scan_finds_a_part_other_than_signed() {
    let app = TestApp::spawn_with(AppOptions {
        env: vec![("UPLOAD_S3_ETAG_IS_MD5".into(), "false".into())],
        ..Default::default()
    })
    .await;
    let file = TestFile::random(12 * MIB + 3);
    let (client, honest) = app.upload_parts("seller-sse", &file, None).await;
    let (_, swapped) = app.upload_parts("seller-sse", &file, None).await;
    // Part 2 signed again for other bytes of the same length: the store holds the
    // bytes sent through the first URL.
    client
        .api()
        .sign_part(pb::SignPartRequest {
            upload_id: swapped.upload_id.clone(),
            part: Some(pb::PartToSign {
                checksum_sha256: Vec::new(),
                part_number: 2,
                content_md5: md5::Md5::digest(b"other").to_vec(),
                content_length: 5 * MIB,
            }),
        })
        .await
        .expect("signing part 2 again");
    for upload in [&honest, &swapped] {
        // Sizes match: completion cannot tell, and assembles both.
        client
            .complete(&upload.upload_id)
            .await
            .expect("CompleteUpload");
    }
    let ready = app
        .wait_settled(&client, &honest.upload_id, Duration::from_secs(60))
        .await;
    assert_eq!(ready.state, pb::UploadState::Ready as i32, "{ready:?}");
    assert_eq!(ready.metadata.expect("hashes").md5_hex, file.md5_hex);

    let failed = app
        .wait_settled(&client, &swapped.upload_id, Duration::from_secs(60))
        .await;
    assert_eq!(failed.state, pb::UploadState::Failed as i32, "{failed:?}");
    let failure = failed.failure.expect("a failure");
    assert_eq!(failure.code, FailureCode::PartMismatch.as_str());
    assert!(
        failure
            .message
            .starts_with("part 2 holds other bytes than the ones signed for it"),
        "{}",
        failure.message
    );
}
