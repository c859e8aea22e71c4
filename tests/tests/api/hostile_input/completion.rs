//! Completing what cannot be completed (parts missing, parts other than signed,
//! aborted, past its deadline) and aborting what is done are refused with nothing
//! changed; completing twice or many times at once assembles and queues once.

use md5::Digest;
use tonic::Code;
use upload_domain::SellerGroup;
use upload_e2e::{AppOptions, MIB, TestApp, TestFile, pb};

use super::{Case, case, refuse_all};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn completing_early_late_or_after_a_swap_changes_nothing() {
    let app = TestApp::spawn_with(AppOptions {
        worker: false,
        ..Default::default()
    })
    .await;
    let file = TestFile::random(12 * MIB);
    let (client, partial) = app.upload_parts("seller-a", &file, Some(&[1])).await;
    let (_, nothing) = app.upload_parts("seller-a", &file, Some(&[])).await;
    // All parts sent, then part 2 signed again for other content: the store holds
    // what is no longer signed.
    let (_, resigned) = app.upload_parts("seller-a", &file, None).await;
    client
        .api()
        .sign_part(pb::SignPartRequest {
            upload_id: resigned.upload_id.clone(),
            part: Some(pb::PartToSign {
                checksum_sha256: Vec::new(),
                part_number: 2,
                content_md5: md5::Md5::digest(b"other").to_vec(),
                content_length: 5 * MIB,
            }),
        })
        .await
        .expect("signing part 2 again");
    let (_, aborted) = app.upload_parts("seller-a", &file, None).await;
    client.abort(&aborted.upload_id).await.unwrap();
    let (_, late) = app.upload_parts("seller-a", &file, None).await;
    app.execute(&format!(
        "UPDATE uploads SET expires_at = now() - interval '1 minute' WHERE id = '{}'",
        late.upload_id
    ))
    .await;
    let (_, done) = app
        .upload_whole(
            "seller-a",
            &TestFile::random(MIB),
            "d.bin",
            "application/octet-stream",
        )
        .await;

    // The seller's client lists its parts before completing: the upload's progress
    // then shows what the store holds, and a refused completion has nothing to add.
    for upload in [&partial, &nothing, &resigned] {
        client
            .missing_parts(&upload.upload_id)
            .await
            .expect("ListUploadedParts");
    }

    let mut cases: Vec<Case> = Vec::new();
    let mut complete = |label: &str, upload: &pb::Upload, code, words: &[&str]| {
        let mut api = client.api();
        let req = pb::CompleteUploadRequest {
            upload_id: upload.upload_id.clone(),
        };
        cases.push(case(
            format!("CompleteUpload, {label}"),
            code,
            words,
            async move { api.complete_upload(req).await },
        ));
    };
    complete(
        "parts 2 and 3 missing",
        &partial,
        Code::FailedPrecondition,
        &["parts 2, 3", "not in the store yet"],
    );
    complete(
        "no part sent",
        &nothing,
        Code::FailedPrecondition,
        &["parts 1, 2, 3", "not in the store yet"],
    );
    complete(
        "a part other than signed",
        &resigned,
        Code::FailedPrecondition,
        &["parts 2", "differ from what was signed"],
    );
    complete(
        "aborted",
        &aborted,
        Code::FailedPrecondition,
        &["aborted", "start a new upload"],
    );
    complete(
        "past its deadline",
        &late,
        Code::FailedPrecondition,
        &["expired", "start a new upload"],
    );
    let mut api = client.api();
    let req = pb::AbortUploadRequest {
        upload_id: done.upload_id.clone(),
    };
    cases.push(case(
        "AbortUpload, completed",
        Code::FailedPrecondition,
        &["only an unfinished upload can be aborted"],
        async move { api.abort_upload(req).await },
    ));
    let refused = refuse_all(&app, "completion", cases).await;
    assert!(refused >= 6, "{refused}");
    app.expect_unfinished_jobs(1); // `done`'s scan, with no worker to run it

    // Completing again answers as before and changes nothing.
    let before = app.fingerprint().await;
    let again = client
        .complete(&done.upload_id)
        .await
        .expect("a second CompleteUpload");
    assert_eq!(again.state, pb::UploadState::Uploaded as i32, "{again:?}");
    before.assert_unchanged(&app.fingerprint().await, "CompleteUpload twice");

    // Aborting again answers as before and changes nothing.
    let again = client
        .abort(&aborted.upload_id)
        .await
        .expect("a second AbortUpload");
    assert_eq!(again.state, pb::UploadState::Aborted as i32, "{again:?}");
    before.assert_unchanged(&app.fingerprint().await, "AbortUpload twice");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn completing_many_times_at_once_assembles_and_queues_once() {
    let app = TestApp::spawn_with(AppOptions {
        worker: false,
        ..Default::default()
    })
    .await;
    let file = TestFile::random(12 * MIB);
    let (_, upload) = app.upload_parts("seller-a", &file, None).await;
    let client = app.client("seller-a", SellerGroup::Standard).await;
    let calls = (0..8).map(|_| {
        let client = client.clone();
        let id = upload.upload_id.clone();
        tokio::spawn(async move { client.complete(&id).await })
    });
    let results = futures::future::join_all(calls).await;
    let ok = results.iter().filter(|r| matches!(r, Ok(Ok(_)))).count();
    for r in &results {
        if let Ok(Err(e)) = r {
            let upload_client::ClientError::Rpc(status) = e else {
                panic!("not a gRPC refusal: {e}");
            };
            assert!(
                matches!(
                    status.code(),
                    Code::FailedPrecondition | Code::Aborted | Code::Unavailable
                ),
                "{status:?}"
            );
        }
    }
    assert!(ok >= 1, "no CompleteUpload succeeded: {results:?}");
    let jobs = app.count("SELECT count(*) FROM apalis.jobs").await;
    assert_eq!(jobs, 1, "one scan queued for eight completes");
    let keys = app.keys(app.temp_bucket(), "").await;
    assert_eq!(keys.len(), 1, "one assembled object: {keys:?}");
    let head = app
        .store
        .client()
        .head_object()
        .bucket(app.temp_bucket())
        .key(&keys[0])
        .send()
        .await
        .unwrap();
    assert_eq!(
        head.content_length(),
        Some(i64::try_from(file.size).unwrap())
    );
    let row = app.first_upload().await;
    assert_eq!(row.state, upload_domain::UploadState::Uploaded);
    eprintln!("CompleteUpload x8 at once: {ok} answered OK, 1 job, 1 object");
    app.expect_unfinished_jobs(1);
}
