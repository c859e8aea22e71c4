//! Store behaviour the service must turn into actionable answers.

use md5::Digest;
use upload_e2e::{AppOptions, TestApp, TestFile, pb};

const MIB: u64 = 1024 * 1024;

/// A re-upload of an already stored part that dies mid-body: on Garage the part is
/// then unusable until sent again, and CompleteUpload must say so.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_part_whose_resend_broke_off_must_be_sent_again_before_completing() {
    let app = TestApp::spawn_with(AppOptions {
        worker: false,
        ..Default::default()
    })
    .await;
    let file = TestFile::random(10 * MIB, 41);
    let (client, upload) = app.upload_parts("seller-quirk", &file, None).await;

    // Re-send part 2 with the same content, but cut the body off halfway.
    let body = std::fs::read(&file.path).unwrap()[(5 * MIB) as usize..].to_vec();
    let signed = client
        .api()
        .sign_parts(pb::SignPartsRequest {
            upload_id: upload.upload_id.clone(),
            parts: vec![pb::PartToSign {
                part_number: 2,
                content_md5: md5::Md5::digest(&body).to_vec(),
                content_length: body.len() as u64,
            }],
        })
        .await
        .unwrap()
        .into_inner()
        .parts
        .remove(0);
    let half = bytes::Bytes::copy_from_slice(&body[..body.len() / 2]);
    let broken = futures::stream::iter(vec![
        Ok::<_, std::io::Error>(half),
        Err(std::io::Error::other("connection lost")),
    ]);
    let mut req = reqwest::Client::new()
        .put(&signed.url)
        .body(reqwest::Body::wrap_stream(broken));
    for h in &signed.headers {
        req = req.header(h.name.as_str(), h.value.as_str());
    }
    assert!(req.send().await.is_err(), "the broken re-send must fail");

    let outcome = client
        .api()
        .complete_upload(pb::CompleteUploadRequest {
            upload_id: upload.upload_id.clone(),
        })
        .await;
    // Garage lost the stored copy when the re-send broke off; the seller is told what to do.
    let status = outcome.expect_err("completing must be refused until the part is sent again");
    assert_eq!(status.code(), tonic::Code::FailedPrecondition, "{status:?}");
    assert!(
        status.message().contains("send again"),
        "{}",
        status.message()
    );
    // The store's part list still shows the old copy, so only the client knows which
    // part it was re-sending; it sends that one again, and completing works.
    client
        .send_parts(
            &upload,
            &file.path,
            &[2],
            upload_client::SendOptions::default(),
            |_, _| {},
        )
        .await
        .unwrap();
    let done = client
        .complete(&upload.upload_id)
        .await
        .expect("complete after re-sending");
    assert_eq!(done.state, pb::UploadState::Uploaded as i32);
}
