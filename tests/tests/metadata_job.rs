//! The metadata job: retries with growing delays, a bounded number of attempts,
//! then a clear failed state; and running it twice changes nothing.

use std::time::Duration;

use upload_e2e::{AppOptions, TestApp, TestFile, pb};

const MIB: u64 = 1024 * 1024;

fn closed_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unreachable_store_is_retried_with_delay_then_the_upload_fails_with_a_stable_code() {
    let app = TestApp::spawn_with(AppOptions {
        worker_env: vec![
            (
                "UPLOAD_S3_ENDPOINT".into(),
                format!("http://127.0.0.1:{}", closed_port()),
            ),
            ("UPLOAD_JOB_MAX_ATTEMPTS".into(), "3".into()),
            ("UPLOAD_JOB_RETRY_BASE_SECS".into(), "1".into()),
        ],
        ..Default::default()
    })
    .await;
    let file = TestFile::random(6 * MIB, 9);
    let (client, upload) = app.upload_parts("seller-retry", &file, None).await;
    client.complete(&upload.upload_id).await.unwrap();

    let failed = app
        .wait_settled(&client, &upload.upload_id, Duration::from_secs(60))
        .await;
    assert_eq!(failed.state, pb::UploadState::Failed as i32);
    let failure = failed.failure.expect("a failure is recorded");
    assert_eq!(failure.code, "metadata_failed");
    assert!(
        failure.message.contains("3 attempts"),
        "{}",
        failure.message
    );

    // Three attempts, each its own job row, each scheduled later than the previous.
    let id = &upload.upload_id;
    assert_eq!(
        app.count(&format!(
            "SELECT count(*) FROM apalis.jobs WHERE idempotency_key LIKE '{id}#%'"
        ))
        .await,
        3
    );
    let spaced = app
        .count(&format!(
            "SELECT count(*) FROM apalis.jobs a JOIN apalis.jobs b
               ON b.idempotency_key = '{id}#' || (split_part(a.idempotency_key, '#', 2)::int + 1)
             WHERE a.idempotency_key LIKE '{id}#%' AND b.run_at >= a.run_at + interval '900 milliseconds'"
        ))
        .await;
    assert_eq!(spaced, 2, "each retry waits at least its delay");
    // Every failed attempt is visible to ops as Failed (the last ack may trail the upload's failure).
    app.wait_count(
        &format!("SELECT count(*) FROM apalis.jobs WHERE idempotency_key LIKE '{id}#%' AND status = 'Failed'"),
        3,
        Duration::from_secs(10),
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn running_the_metadata_job_twice_gives_the_same_rows() {
    let app = TestApp::spawn().await;
    let file = TestFile::random(7 * MIB, 10);
    let (client, upload) = app
        .upload_parts("seller-twice-job", &file, Some(&[1, 2]))
        .await;
    client.complete(&upload.upload_id).await.unwrap();
    let first = app
        .wait_settled(&client, &upload.upload_id, Duration::from_secs(60))
        .await;
    assert_eq!(first.state, pb::UploadState::Ready as i32);

    // A worker that died mid-job leaves the upload processing with no metadata, and
    // apalis re-delivers the job; the rerun must finish it with the same result.
    app.execute("UPDATE uploads SET state = 'processing'").await;
    app.execute("DELETE FROM upload_metadata").await;
    app.execute(&format!(
        "UPDATE apalis.jobs SET status = 'Pending', lock_by = NULL, done_at = NULL
         WHERE idempotency_key = '{}#1'",
        upload.upload_id
    ))
    .await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while app
        .count(&format!(
            "SELECT count(*) FROM apalis.jobs WHERE idempotency_key = '{}#1' AND status = 'Pending'",
            upload.upload_id
        ))
        .await
        > 0
    {
        assert!(tokio::time::Instant::now() < deadline, "the re-delivered job was not picked up");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let again = app
        .wait_settled(&client, &upload.upload_id, Duration::from_secs(30))
        .await;
    assert_eq!(again.state, first.state);
    assert_eq!(again.metadata, first.metadata);
    assert_eq!(app.count("SELECT count(*) FROM upload_metadata").await, 1);
}
