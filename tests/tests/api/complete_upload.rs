//! CompleteUpload: checks against what was signed, idempotency, one job only,
//! recovery when a previous completion died between the store and the database, and
//! the store's refusals turned into answers a client can act on.

use md5::Digest;
use std::time::Duration;
use upload_client::SendOptions;
use upload_domain::SellerGroup;
use upload_e2e::{AppOptions, MIB, TestApp, TestFile, pb};

fn jobs_for(id: &str) -> String {
    format!(
        "SELECT count(*) FROM apalis.jobs WHERE convert_from(job, 'UTF8')::jsonb->>'upload_id' = '{id}'"
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn completing_twice_gives_the_same_answer_and_one_job() {
    let app = TestApp::spawn_with(AppOptions {
        worker: false,
        ..AppOptions::on_cluster()
    })
    .await;
    // CompleteUpload queues the scan, and no worker runs here.
    app.expect_unfinished_jobs(1);
    let file = TestFile::random(12 * MIB);
    let (client, upload) = app
        .upload_parts("seller-twice", &file, Some(&[1, 2, 3]))
        .await;

    let first = client
        .complete(&upload.upload_id)
        .await
        .expect("first complete");
    let second = client
        .complete(&upload.upload_id)
        .await
        .expect("second complete");
    assert_eq!(first.state, pb::UploadState::Uploaded as i32);
    assert_eq!(first, second);
    assert_eq!(app.count(&jobs_for(&upload.upload_id)).await, 1);
    let job_type = app
        .count(&format!(
            "SELECT count(*) FROM apalis.jobs WHERE job_type = 'upload.scan' AND idempotency_key = '{}#1'",
            upload.upload_id
        ))
        .await;
    assert_eq!(
        job_type, 1,
        "the scan job is first, on its named queue, first attempt"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn racing_completes_enqueue_exactly_one_job() {
    let app = TestApp::spawn_with(AppOptions {
        worker: false,
        ..AppOptions::on_cluster()
    })
    .await;
    // CompleteUpload queues the scan, and no worker runs here.
    app.expect_unfinished_jobs(1);
    let file = TestFile::random(11 * MIB);
    let (client, upload) = app
        .upload_parts("seller-race", &file, Some(&[1, 2, 3]))
        .await;
    let mut calls = tokio::task::JoinSet::new();
    for _ in 0..8 {
        let client = client.clone();
        let id = upload.upload_id.clone();
        calls.spawn(async move { client.complete(&id).await });
    }
    let mut ok = 0;
    while let Some(done) = calls.join_next().await {
        if done.unwrap().is_ok() {
            ok += 1;
        }
    }
    assert!(ok >= 1, "at least one complete succeeds");
    assert_eq!(app.count(&jobs_for(&upload.upload_id)).await, 1);
    assert_eq!(
        app.count("SELECT count(*) FROM uploads WHERE state = 'uploaded'")
            .await,
        1
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn complete_with_missing_parts_names_them_and_changes_nothing() {
    let app = TestApp::spawn_with(AppOptions {
        worker: false,
        ..AppOptions::on_cluster()
    })
    .await;
    // CompleteUpload queues the scan, and no worker runs here.
    app.expect_unfinished_jobs(1);
    let file = TestFile::random(16 * MIB);
    let (client, upload) = app
        .upload_parts("seller-missing", &file, Some(&[1, 3]))
        .await;
    let status = client
        .api()
        .complete_upload(pb::CompleteUploadRequest {
            upload_id: upload.upload_id.clone(),
        })
        .await
        .expect_err("parts 2 and 4 are missing");
    assert_eq!(status.code(), tonic::Code::FailedPrecondition);
    assert!(status.message().contains("2, 4"), "{}", status.message());
    assert_eq!(app.count(&jobs_for(&upload.upload_id)).await, 0);
    assert_eq!(
        app.count("SELECT count(*) FROM uploads WHERE state = 'uploading'")
            .await,
        1
    );

    // Sending the rest makes it completable.
    client
        .send_parts(
            &upload,
            &file.path,
            &[2, 4],
            SendOptions::default(),
            |_, _| {},
        )
        .await
        .unwrap();
    client
        .complete(&upload.upload_id)
        .await
        .expect("complete after the rest");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_completion_interrupted_after_the_store_is_finished_by_calling_again() {
    let app = TestApp::spawn_with(AppOptions::on_cluster()).await;
    let file = TestFile::random(10 * MIB + 3);
    let (client, upload) = app
        .upload_parts("seller-crash", &file, Some(&[1, 2, 3]))
        .await;

    // Simulate a server that assembled the object and died before its database write.
    app.complete_in_store_only().await;
    assert_eq!(
        app.count("SELECT count(*) FROM uploads WHERE state = 'uploading'")
            .await,
        1
    );

    let done = client
        .complete(&upload.upload_id)
        .await
        .expect("complete finishes the job");
    assert_ne!(done.state, pb::UploadState::Uploading as i32);
    let ready = app
        .wait_settled(&client, &upload.upload_id, Duration::from_secs(60))
        .await;
    assert_eq!(ready.state, pb::UploadState::Ready as i32);
    assert_eq!(ready.metadata.unwrap().sha256_hex, file.sha256_hex);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_upload_ids_are_invalid_arguments() {
    let app = TestApp::spawn_with(AppOptions {
        worker: false,
        ..AppOptions::on_cluster()
    })
    .await;
    let client = app.client("seller-ids", SellerGroup::Standard).await;
    let mut api = client.api();
    for bad in ["", "not-a-uuid", "12345"] {
        let status = api
            .complete_upload(pb::CompleteUploadRequest {
                upload_id: bad.into(),
            })
            .await
            .expect_err(bad);
        assert_eq!(status.code(), tonic::Code::InvalidArgument, "{bad:?}");
    }
}

/// A re-upload of an already stored part that dies mid-body: on Garage the part is
/// then unusable until sent again, and CompleteUpload must say so.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_part_whose_resend_broke_off_must_be_sent_again_before_completing() {
    let app = TestApp::spawn_with(AppOptions {
        worker: false,
        ..AppOptions::on_cluster()
    })
    .await;
    // CompleteUpload queues the scan, and no worker runs here.
    app.expect_unfinished_jobs(1);
    let file = TestFile::random(10 * MIB);
    let (client, upload) = app.upload_parts("seller-quirk", &file, None).await;

    // Re-send part 2 with the same content, but cut the body off halfway.
    let body = std::fs::read(&file.path).unwrap()[(5 * MIB) as usize..].to_vec();
    let signed = client
        .api()
        .sign_parts(pb::SignPartsRequest {
            upload_id: upload.upload_id.clone(),
            parts: vec![pb::PartToSign {
                checksum_sha256: Vec::new(),
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upload_past_its_deadline_cannot_be_completed() {
    let app = TestApp::spawn_with(AppOptions {
        worker: false,
        ..AppOptions::on_cluster()
    })
    .await;
    let file = TestFile::random(10 * MIB);
    let (client, upload) = app.upload_parts("seller-late", &file, None).await;
    app.execute("UPDATE uploads SET expires_at = now() - interval '1 second'")
        .await;
    let refused = client
        .api()
        .complete_upload(pb::CompleteUploadRequest {
            upload_id: upload.upload_id.clone(),
        })
        .await
        .expect_err("refused");
    assert_eq!(refused.code(), tonic::Code::FailedPrecondition);
    assert!(
        refused.message().contains("expired"),
        "{}",
        refused.message()
    );
    // Nothing changed: still uploading, nothing queued, the parts still in the store.
    assert_eq!(
        app.count("SELECT count(*) FROM uploads WHERE state = 'uploading'")
            .await,
        1
    );
    assert_eq!(app.count("SELECT count(*) FROM apalis.jobs").await, 0);
    assert_eq!(app.first_upload_parts().await.expect("parts").len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upload_pinned_by_sha256_completes_against_the_store_s_checksums_to_ready() {
    use sha2::Digest as _;
    let app = TestApp::spawn().await;
    let seller = "seller-sha256";
    let client = app
        .client(seller, upload_domain::SellerGroup::Standard)
        .await;
    let file = TestFile::random(12 * MIB + 3);
    let bytes = std::fs::read(&file.path).unwrap();
    let upload = client
        .api()
        .create_upload(pb::CreateUploadRequest {
            file_name: "product.bin".into(),
            size_bytes: file.size,
            content_type: "application/octet-stream".into(),
            part_size_bytes: 5 * MIB,
            idempotency_key: String::new(),
            part_checksum: pb::PartChecksum::Sha256 as i32,
        })
        .await
        .unwrap()
        .into_inner()
        .upload
        .unwrap();
    let parts: Vec<pb::PartToSign> = bytes
        .chunks((5 * MIB) as usize)
        .enumerate()
        .map(|(i, body)| pb::PartToSign {
            part_number: u32::try_from(i + 1).unwrap(),
            content_md5: Vec::new(),
            content_length: body.len() as u64,
            checksum_sha256: sha2::Sha256::digest(body).to_vec(),
        })
        .collect();
    let signed = client
        .api()
        .sign_parts(pb::SignPartsRequest {
            upload_id: upload.upload_id.clone(),
            parts,
        })
        .await
        .unwrap()
        .into_inner()
        .parts;
    let http = reqwest::Client::new();
    for (part, body) in signed.iter().zip(bytes.chunks((5 * MIB) as usize)) {
        let mut req = http.put(&part.url).body(body.to_vec());
        for h in &part.headers {
            req = req.header(h.name.as_str(), h.value.as_str());
        }
        let res = req.send().await.unwrap();
        assert!(res.status().is_success(), "{}", res.text().await.unwrap());
    }
    let done = client.complete(&upload.upload_id).await.unwrap();
    assert_eq!(done.state, pb::UploadState::Uploaded as i32);
    let settled = app
        .wait_settled(&client, &upload.upload_id, Duration::from_secs(60))
        .await;
    assert_eq!(settled.state, pb::UploadState::Ready as i32, "{settled:?}");
    // The content's own MD5, which names the stored file, is the scan's.
    let meta = settled.metadata.unwrap();
    assert_eq!(
        (meta.md5_hex, meta.sha256_hex),
        (file.md5_hex, file.sha256_hex)
    );
}
