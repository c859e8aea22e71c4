//! Faults survived with nothing lost: a store that fails a tenth of its requests,
//! a database restarted and stopped under load, a scanner restarted mid-scan, the
//! progress listener's connection gone silent, and the worker killed at every step
//! that matters.

mod clamd_restart;
mod database_outage;
mod listener_silence;
mod scale_out;
mod store_faults;
mod worker_kills;

use std::collections::{BTreeSet, HashMap};
use std::time::Duration;

use upload_client::UploadClient;
use upload_domain::SellerGroup;
use upload_e2e::{TestApp, TestFile, pb, poll_until};

/// The worker as its own process, for tests that kill it.
pub struct WorkerProcess;

impl WorkerProcess {
    /// Starts a worker process for `app`, armed to stop at `failpoint` when given.
    pub fn start(app: &TestApp, failpoint: Option<&str>) -> upload_e2e::WorkerProcess {
        upload_e2e::WorkerProcess::start(env!("CARGO_BIN_EXE_test-worker"), app, failpoint)
    }
}

/// Polls GetUpload until the upload is in `state`; panics after `timeout`.
pub async fn wait_state(
    client: &UploadClient,
    upload_id: &str,
    state: pb::UploadState,
    timeout: Duration,
) -> pb::Upload {
    poll_until(
        &format!("upload {upload_id} to be {state:?}"),
        timeout,
        || async {
            let upload = match client.get(upload_id).await {
                Ok(got) => got.upload,
                // The server may answer UNAVAILABLE while its database is away.
                Err(_) => None,
            };
            let reached = upload.as_ref().is_some_and(|u| u.state == state as i32);
            (reached, upload)
        },
    )
    .await
    .expect("the upload")
}

/// Creates, sends and completes an upload of `file` as `name` (`content_type`)
/// for `seller`, retrying CompleteUpload while the server answers UNAVAILABLE.
pub async fn upload(
    app: &TestApp,
    seller: &str,
    file: &TestFile,
    name: &str,
    content_type: &str,
) -> (UploadClient, pb::Upload) {
    let client = app.client(seller, SellerGroup::Premium).await;
    let upload = client
        .create(name, file.size, content_type, None)
        .await
        .expect("CreateUpload");
    let all: Vec<u32> = (1..=upload.part_count).collect();
    client
        .send_parts(&upload, &file.path, &all, Default::default(), |_, _| {})
        .await
        .expect("sending parts");
    for attempt in 1.. {
        match client.complete(&upload.upload_id).await {
            Ok(done) => return (client, done),
            Err(e) if attempt < 20 => {
                eprintln!("CompleteUpload attempt {attempt}: {e}");
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
            Err(e) => panic!("CompleteUpload kept failing: {e}"),
        }
    }
    unreachable!("the loop returns or panics")
}

/// Everything in `bucket` that is not one of `expected` keys or under one of
/// `expected_prefixes`.
pub async fn strays(
    app: &TestApp,
    bucket: &str,
    expected: &BTreeSet<String>,
    expected_prefixes: &[String],
) -> Vec<String> {
    app.keys(bucket, "")
        .await
        .into_iter()
        .filter(|k| !expected.contains(k) && !expected_prefixes.iter().any(|p| k.starts_with(p)))
        .collect()
}

/// Asserts that the temp and quarantine buckets hold nothing: every upload was
/// moved on and every quarantined file cleared. On the Garage cluster a listing
/// may trail deletes for a while after a node came back, so it is read again for
/// up to 30 s; what is still listed then is named with whether it can be read.
pub async fn temp_and_quarantine_empty(app: &TestApp) {
    for role in [
        upload_storage::Bucket::Temp,
        upload_storage::Bucket::Quarantine,
    ] {
        let bucket = app.bucket(role).to_owned();
        let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(30);
        let mut left = app.keys(&bucket, "").await;
        while !left.is_empty() && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(std::time::Duration::from_secs(1)).await;
            left = app.keys(&bucket, "").await;
        }
        let mut readable = Vec::new();
        for key in &left {
            readable.push((key.clone(), app.object_bytes(&bucket, key).await.is_some()));
        }
        assert_eq!(
            readable,
            Vec::<(String, bool)>::new(),
            "{role} bucket: keys still listed after 30 s, with whether each can be read"
        );
    }
}

/// Counts rows per upload in `table`: every upload must have exactly one.
pub async fn one_row_each(app: &TestApp, table: &str, uploads: &[pb::Upload]) {
    for up in uploads {
        let n = app
            .count(&format!(
                "SELECT count(*) FROM {table} WHERE upload_id = '{}'",
                up.upload_id
            ))
            .await;
        assert_eq!(n, 1, "{table} rows of upload {}", up.upload_id);
    }
}

/// A printed table row, for the suite's summary in the test output.
pub fn report(name: &str, figures: &HashMap<&str, String>) {
    let mut keys: Vec<&&str> = figures.keys().collect();
    keys.sort();
    let shown: Vec<String> = keys
        .iter()
        .map(|k| format!("{k}={}", figures[**k]))
        .collect();
    eprintln!("FAULT REPORT {name}: {}", shown.join(" "));
}
