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
//!
//! Where the CPU went, per GiB sent, each kind of run summed over its rounds: the
//! client (the CLI, read as this process's reaped child; for the page, Node and
//! every Chromium process, read from `/proc` every 100 ms while it runs, and also
//! by Chromium process type), Garage, this process (the server runs in it), the
//! rest of the machine, and the share of the cores left idle. Where the client and
//! the store share the cores, a client that costs more CPU per GiB sends fewer GiB
//! per second. The page's figures include Chromium's start and the page's load.
//!
//! A third run each round, "floor": Chromium alone sends the file's parts (same
//! size, four at a time) straight from the file to a local sink that discards them —
//! no hashing, no signing, no store. What its client costs per GiB is what no page
//! can go under in this browser, whatever its JavaScript does.

use std::collections::BTreeMap;
use std::ffi::OsStr;
use std::path::Path;
use std::time::{Duration, Instant};

use upload_domain::SellerGroup;
use upload_e2e::bench::env_or;
use upload_e2e::procfs::{CpuSampler, cpu, cpu_whole, machine_cpu, pid_file};
use upload_e2e::{AppOptions, MIB, TestApp, TestFile, run_page};

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

/// Chromium alone sending the file's parts to a sink that discards them.
async fn chromium_floor(app: &TestApp, file: &TestFile, part: u64) -> Duration {
    let token = app.token("bench-floor", SellerGroup::Premium);
    let part = part.to_string();
    let (result, report) = run_page(
        app,
        &token,
        &[
            ("WEB_SCENARIO", OsStr::new("floor")),
            ("WEB_FILE", file.path.as_os_str()),
            ("WEB_PART_BYTES", OsStr::new(&part)),
        ],
    )
    .await;
    Duration::from_millis(result["uploadMs"].as_u64().expect(&report))
}

/// The page's processes: Node running the page's script, and Chromium's by type.
fn page_process(cmdline: &str) -> Option<&'static str> {
    if cmdline.contains("e2e.mjs") {
        Some("node")
    } else if !cmdline.contains("chromium") {
        None
    } else if cmdline.contains("--type=renderer") {
        Some("renderer")
    } else if cmdline.contains("NetworkService") {
        Some("network")
    } else if cmdline.contains("--type=") {
        Some("other")
    } else {
        Some("browser")
    }
}

/// CPU seconds: the client's (reaped children), Garage's, this process's, the
/// machine's busy and idle; and those of sampled processes, by class.
#[derive(Default)]
struct Cpu([f64; 5], BTreeMap<&'static str, f64>);

/// Where the client's (reaped children's) seconds are in `Cpu`'s first field.
const CLIENT: usize = 0;

impl Cpu {
    fn read(garage: u32) -> [f64; 5] {
        let (own, children) = cpu(std::process::id());
        let (busy, idle) = machine_cpu();
        [children, cpu_whole(garage), own, busy, idle]
    }

    /// What `f` cost, added to `self`; with `sampled`, also the processes it names.
    async fn add<T>(
        &mut self,
        garage: u32,
        sampled: Option<fn(&str) -> Option<&'static str>>,
        f: impl std::future::Future<Output = T>,
    ) -> T {
        let sampler =
            sampled.map(|classify| CpuSampler::start(classify, Duration::from_millis(100)));
        let before = Cpu::read(garage);
        let out = f.await;
        let after = Cpu::read(garage);
        for i in 0..self.0.len() {
            // Sampled processes stand for the client (reaped ones would count twice).
            if !(i == CLIENT && sampler.is_some()) {
                self.0[i] += after[i] - before[i];
            }
        }
        for (class, seconds) in sampler.map(CpuSampler::stop).unwrap_or_default() {
            *self.1.entry(class).or_insert(0.0) += seconds;
        }
        out
    }

    /// One row: seconds per GiB by kind, the rest, and the idle share.
    fn row(&self, label: &str, gib: f64) {
        let [client, garage, own, busy, idle] = self.0;
        let client = client + self.1.values().sum::<f64>();
        let rest = busy - client - garage - own;
        println!(
            "{label:<6} {:>8.2} {:>8.2} {:>8.2} {:>8.2} {:>8.2} {:>7.0}%",
            client / gib,
            garage / gib,
            own / gib,
            rest / gib,
            busy / gib,
            100.0 * idle / (busy + idle)
        );
    }
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let size = env_or("BENCH_FILE_MIB", 1024) * MIB;
    let part = env_or("BENCH_PART_MIB", 16) * MIB;
    let rounds: u64 = env_or("BENCH_ROUNDS", 2);
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
        "{:<6} {:>8} {:>9} {:>8} {:>9} {:>10}",
        "round", "CLI s", "CLI MB/s", "page s", "page MB/s", "floor MB/s"
    );
    let garage = pid_file(&upload_e2e::stack_dir().join("garage/pid"));
    let (mut cli_cpu, mut page_cpu, mut floor_cpu) =
        (Cpu::default(), Cpu::default(), Cpu::default());
    let (mut cli_total, mut page_total) = (Duration::ZERO, Duration::ZERO);
    for round in 1..=rounds {
        let c = cli_cpu
            .add(garage, None, cli_upload(&app, &cli, &file, part))
            .await;
        let p = page_cpu
            .add(garage, Some(page_process), page_upload(&app, &file))
            .await;
        let f = floor_cpu
            .add(
                garage,
                Some(page_process),
                chromium_floor(&app, &file, part),
            )
            .await;
        cli_total += c;
        page_total += p;
        println!(
            "{round:<6} {:>8.2} {:>9.1} {:>8.2} {:>9.1} {:>10.1}",
            c.as_secs_f64(),
            mb / c.as_secs_f64(),
            p.as_secs_f64(),
            mb / p.as_secs_f64(),
            mb / f.as_secs_f64()
        );
    }
    println!(
        "page / CLI throughput: {:.3} (target ≥ 0.9)",
        cli_total.as_secs_f64() / page_total.as_secs_f64()
    );
    println!("CPU seconds per GiB sent, all rounds:");
    println!(
        "{:<6} {:>8} {:>8} {:>8} {:>8} {:>8} {:>8}",
        "", "client", "Garage", "server", "rest", "all", "idle"
    );
    let gib = (size * rounds) as f64 / (1024 * MIB) as f64;
    cli_cpu.row("CLI", gib);
    page_cpu.row("page", gib);
    floor_cpu.row("floor", gib);
    for (label, cpu) in [("page", &page_cpu), ("floor", &floor_cpu)] {
        let by_process: Vec<String> = cpu
            .1
            .iter()
            .map(|(class, seconds)| format!("{class} {:.2}", seconds / gib))
            .collect();
        println!("{label}'s client by process: {}", by_process.join(", "));
    }
}
