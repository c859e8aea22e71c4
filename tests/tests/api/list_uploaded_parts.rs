//! ListUploadedParts: a client that lost its memory asks the server what the store
//! holds and sends only the rest.

use std::time::Duration;
use upload_client::SendOptions;
use upload_domain::SellerGroup;
use upload_e2e::{MIB, TestApp, TestFile, pb};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resume_sends_only_the_parts_the_store_lacks() {
    let app = TestApp::spawn_with(upload_e2e::AppOptions::on_cluster()).await;
    let file = TestFile::random(60 * MIB + 12_345);
    let upload = {
        let first = app.client("seller-resume", SellerGroup::Standard).await;
        let upload = first
            .create(
                "course.bin",
                file.size,
                "application/octet-stream",
                Some(5 * MIB),
            )
            .await
            .expect("CreateUpload");
        assert_eq!(upload.part_count, 13);
        let half: Vec<u32> = (1..=6).collect();
        let stats = first
            .send_parts(
                &upload,
                &file.path,
                &half,
                SendOptions::default(),
                |_, _| {},
            )
            .await
            .expect("first half");
        assert_eq!(stats.parts_sent, 6);
        upload
        // The first client, and everything it knew, is dropped here.
    };

    let second = app.client("seller-resume", SellerGroup::Standard).await;
    let missing = second
        .missing_parts(&upload.upload_id)
        .await
        .expect("ListUploadedParts");
    assert_eq!(missing, (7..=13).collect::<Vec<u32>>());

    let sent = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let log = std::sync::Arc::clone(&sent);
    let stats = second
        .resume(&upload, &file.path, SendOptions::default(), move |n, _| {
            log.lock().unwrap().push(n)
        })
        .await
        .expect("resume");
    assert_eq!(stats.parts_sent, 7, "only the missing parts are sent");
    assert_eq!(stats.bytes_sent, file.size - 6 * 5 * MIB);
    let mut numbers = sent.lock().unwrap().clone();
    numbers.sort_unstable();
    assert_eq!(numbers, (7..=13).collect::<Vec<u32>>());
    assert!(
        second
            .missing_parts(&upload.upload_id)
            .await
            .unwrap()
            .is_empty()
    );

    second
        .complete(&upload.upload_id)
        .await
        .expect("CompleteUpload");
    let ready = app
        .wait_settled(&second, &upload.upload_id, Duration::from_secs(60))
        .await;
    assert_eq!(ready.state, pb::UploadState::Ready as i32);
    assert_eq!(ready.metadata.expect("metadata").md5_hex, file.md5_hex);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_part_resent_with_other_content_counts_as_missing_until_sent_as_signed() {
    let app = TestApp::spawn_with(upload_e2e::AppOptions {
        worker: false,
        ..upload_e2e::AppOptions::on_cluster()
    })
    .await;
    let file = TestFile::random(10 * MIB);
    let client = app.client("seller-resign", SellerGroup::Standard).await;
    let upload = client
        .create(
            "a.bin",
            file.size,
            "application/octet-stream",
            Some(5 * MIB),
        )
        .await
        .unwrap();
    client
        .send_parts(
            &upload,
            &file.path,
            &[1, 2],
            SendOptions::default(),
            |_, _| {},
        )
        .await
        .unwrap();
    // Part 2 is signed again for other content and never sent: the stored part no
    // longer matches what was last signed, so it is reported missing again.
    client
        .api()
        .sign_parts(pb::SignPartsRequest {
            upload_id: upload.upload_id.clone(),
            parts: vec![pb::PartToSign {
                checksum_sha256: Vec::new(),
                part_number: 2,
                content_md5: vec![7; 16],
                content_length: 5 * MIB,
            }],
        })
        .await
        .unwrap();
    assert_eq!(
        client.missing_parts(&upload.upload_id).await.unwrap(),
        vec![2]
    );
    let err = client
        .complete(&upload.upload_id)
        .await
        .expect_err("complete must refuse");
    assert!(err.to_string().contains("part"), "{err}");
}
