//! clamd restarted in the middle of a scan: the scan fails, is tried again once the
//! scanner is back, and reaches the verdict the whole file deserves: a file whose
//! malware sits at its very end is quarantined, never passed on a partial read.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use upload_e2e::{AppOptions, Clamd, EICAR, MIB, TestApp, TestFile, free_port, pb, poll_until};

use crate::{report, upload, wait_state};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_scanner_restarted_mid_scan_is_waited_for_and_never_passes_a_file() {
    let port = free_port();
    let clamd = Clamd::start(port).await;
    let app = TestApp::spawn_with(AppOptions {
        env: vec![
            ("UPLOAD_CLAMD_ADDR".into(), format!("127.0.0.1:{port}")),
            ("UPLOAD_JOB_RETRY_MAX_SECS".into(), "2".into()),
        ],
        ..Default::default()
    })
    .await;
    // The malware is in the last bytes: a scan cut short would miss it.
    let file = TestFile::random_with_tail(150 * MIB, EICAR);
    let (client, up) = upload(
        &app,
        "seller-scan",
        &file,
        "bundle.bin",
        "application/octet-stream",
    )
    .await;
    let id = up.upload_id.clone();
    // Wait until a quarter of the file has gone to clamd, then restart it.
    poll_until(
        "the scan to be a quarter through",
        Duration::from_secs(60),
        || async {
            let done = app
                .count(&format!(
                    "SELECT coalesce(max(bytes_done), 0) FROM upload_progress
                  WHERE upload_id = '{id}' AND stage = 'scan' AND status = 'running'"
                ))
                .await;
            (u64::try_from(done).unwrap_or(0) >= file.size / 4, done)
        },
    )
    .await;
    drop(clamd);
    let restarted = Instant::now();
    let _clamd = Clamd::start(port).await;

    let settled = wait_state(
        &client,
        &id,
        pb::UploadState::Quarantined,
        Duration::from_secs(120),
    )
    .await;
    let scan = settled.scan.expect("a verdict");
    assert_eq!(scan.verdict, pb::ScanVerdict::Infected as i32);
    assert_eq!(
        app.count(&format!(
            "SELECT count(*) FROM upload_scans WHERE upload_id = '{id}' AND bytes_scanned = {}",
            file.size
        ))
        .await,
        1,
        "the verdict covers the whole file"
    );
    let failed = app
        .count(&format!(
            "SELECT count(*) FROM apalis.jobs WHERE idempotency_key LIKE '{id}#%' AND status = 'Failed'"
        ))
        .await;
    assert!(
        failed >= 1,
        "the interrupted scan counted as a failed attempt"
    );
    let mut figures = HashMap::new();
    figures.insert("failed_attempts", failed.to_string());
    figures.insert(
        "restart_to_verdict_s",
        format!("{:.1}", restarted.elapsed().as_secs_f64()),
    );
    report("clamd restart", &figures);
}
