//! The browser page's upload against the Rust CLI's, the same file to the same
//! store in the same run, same part size and four parts at a time, runs
//! alternating (CLI, page, CLI, page, …). Both are timed from the start to the
//! answer of CompleteUpload: the page in headless Chromium (its Web Workers hash,
//! `SignParts` batches, PUTs from the file), the CLI as its own release process.
//!
//! Needs the local stack and the release CLI:
//!     cargo build --release -p upload-client
//!     cargo bench -p upload-e2e --bench page_throughput
//! `BENCH_FILE_MIB` (default 1024), `BENCH_PART_MIB` (16), `BENCH_ROUNDS` (2).

use std::ffi::OsStr;
use std::path::Path;
use std::time::{Duration, Instant};

use upload_domain::SellerGroup;
use upload_e2e::{AppOptions, MIB, TestApp, TestFile, run_page};

fn env_or(key: &str, default: u64) -> u64 {
    std::env::var(key)
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(default)
}

async fn cli_upload(app: &TestApp, cli: &Path, file: &TestFile, part: u64) -> Duration {
    let state = tempfile::tempdir().expect("state dir");
    let started = Instant::now();
    let status = tokio::process::Command::new(cli)
        .args(["--endpoint", &app.endpoint])
        .args(app.cli_tls_args())
        .arg("--token")
        .arg(app.token("bench-cli", SellerGroup::Premium))
        .args(["--plain", "put"])
        .arg(&file.path)
        .args(["--part-size", &part.to_string(), "--concurrency", "4"])
        .args(["--no-watch", "--state-dir"])
        .arg(state.path())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .await
        .expect("the CLI runs");
    assert!(status.success(), "the CLI upload failed");
    started.elapsed()
}

async fn page_upload(app: &TestApp, file: &TestFile) -> Duration {
    let token = app.token("bench-page", SellerGroup::Premium);
    let (result, report) = run_page(
        app,
        &token,
        &[
            ("WEB_SCENARIO", OsStr::new("bench")),
            ("WEB_FILE", file.path.as_os_str()),
        ],
    )
    .await;
    assert_eq!(result["phase"], "processing", "{report}");
    Duration::from_millis(result["uploadMs"].as_u64().expect("uploadMs"))
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let size = env_or("BENCH_FILE_MIB", 1024) * MIB;
    let part = env_or("BENCH_PART_MIB", 16) * MIB;
    let rounds = env_or("BENCH_ROUNDS", 2);
    let cli = Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/release/upload");
    assert!(
        cli.exists(),
        "build it first: cargo build --release -p upload-client"
    );
    // The page takes the server's part size; the CLI is given the same.
    let app = TestApp::spawn_with(AppOptions {
        worker: false,
        env: vec![("UPLOAD_DEFAULT_PART_SIZE_BYTES".into(), part.to_string())],
        ..Default::default()
    })
    .await;
    // Completed uploads queue scans no worker runs here.
    app.expect_unfinished_jobs(i64::try_from(rounds * 2).unwrap_or(0));
    let file = TestFile::random(size);
    let mb = size as f64 / 1e6;
    println!(
        "{} MiB in {} MiB parts, 4 at a time; CLI and page alternating",
        size / MIB,
        part / MIB
    );
    println!(
        "{:<6} {:>8} {:>9} {:>8} {:>9}",
        "round", "CLI s", "CLI MB/s", "page s", "page MB/s"
    );
    let (mut cli_total, mut page_total) = (Duration::ZERO, Duration::ZERO);
    for round in 1..=rounds {
        let c = cli_upload(&app, &cli, &file, part).await;
        let p = page_upload(&app, &file).await;
        cli_total += c;
        page_total += p;
        println!(
            "{round:<6} {:>8.2} {:>9.1} {:>8.2} {:>9.1}",
            c.as_secs_f64(),
            mb / c.as_secs_f64(),
            p.as_secs_f64(),
            mb / p.as_secs_f64()
        );
    }
    println!(
        "page / CLI throughput: {:.3} (target ≥ 0.9)",
        cli_total.as_secs_f64() / page_total.as_secs_f64()
    );
}
