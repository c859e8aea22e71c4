//! The reference page's upload in each browser against the Rust CLI's, the same
//! file to the same store in the same run, same part size and four parts at a
//! time, runs alternating (CLI, then each browser's page and floor, round after
//! round). All are timed from the start to the answer of CompleteUpload: the page in
//! headless Chromium and Firefox (its Web Workers hash, `SignParts` batches, PUTs
//! from the file), the CLI as its own release process. `BENCH_BROWSERS` (default
//! `chromium,firefox`).
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
//! A run beside each page's, "floor": the browser alone sends the file's parts (same
//! size, four at a time) straight from the file to a local sink that discards them —
//! no hashing, no signing, no store. What the browser costs per GiB there is what no
//! page can go under in that browser, whatever its JavaScript does; the page's cost
//! is said against it, Node's share (the driver) left out of both.

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

/// The page's upload with its parts pinned by `digest` (`sha256` or `md5`).
async fn page_upload(app: &TestApp, browser: &str, digest: &str, file: &TestFile) -> Duration {
    let token = app.token("bench-page", SellerGroup::Premium);
    let (result, report) = run_page(
        app,
        browser,
        &token,
        &[
            ("WEB_SCENARIO", OsStr::new("bench")),
            ("WEB_FILE", file.path.as_os_str()),
            ("WEB_PART_DIGEST", OsStr::new(digest)),
        ],
    )
    .await;
    assert_eq!(result["phase"], "processing", "{report}");
    assert_eq!(result["partDigest"], digest, "{report}");
    Duration::from_millis(result["uploadMs"].as_u64().expect("uploadMs"))
}

/// The browser alone sending the file's parts to a sink that discards them.
async fn browser_floor(app: &TestApp, browser: &str, file: &TestFile, part: u64) -> Duration {
    let token = app.token("bench-floor", SellerGroup::Premium);
    let part = part.to_string();
    let (result, report) = run_page(
        app,
        browser,
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

/// The page's processes: Node running the page's script, and each browser's by type
/// (Chromium's renderer and network service; Firefox's content processes, its
/// socket process where it has one, and the parent).
fn page_process(cmdline: &str) -> Option<&'static str> {
    if cmdline.contains("e2e.mjs") {
        Some(NODE)
    } else if cmdline.contains("chromium") {
        Some(if cmdline.contains("--type=renderer") {
            "renderer"
        } else if cmdline.contains("NetworkService") {
            "network"
        } else if cmdline.contains("--type=") {
            "other"
        } else {
            "browser"
        })
    } else if cmdline.contains("firefox") {
        Some(if !cmdline.contains("-contentproc") {
            "browser"
        } else if cmdline.trim_end().ends_with(" tab") {
            "content"
        } else if cmdline.trim_end().ends_with(" socket") {
            "network"
        } else {
            "other"
        })
    } else {
        None
    }
}

/// The class of the Node process that drives the browser: not the browser's cost.
const NODE: &str = "node";

/// One browser's runs: the page with parts pinned by SHA-256 and by MD5, the floor.
#[derive(Default)]
struct Browser {
    sha256: Cpu,
    md5: Cpu,
    floor: Cpu,
    sha256_time: Duration,
    md5_time: Duration,
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

    /// The browser's own CPU seconds: every sampled process but Node's.
    fn browser(&self) -> f64 {
        self.1
            .iter()
            .filter(|(class, _)| **class != NODE)
            .map(|(_, seconds)| seconds)
            .sum()
    }

    /// One row: seconds per GiB by kind, the rest, and the idle share.
    fn row(&self, label: &str, gib: f64) {
        let [client, garage, own, busy, idle] = self.0;
        let client = client + self.1.values().sum::<f64>();
        let rest = busy - client - garage - own;
        println!(
            "{label:<16} {:>8.2} {:>8.2} {:>8.2} {:>8.2} {:>8.2} {:>7.0}%",
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
    let browsers: Vec<String> = std::env::var("BENCH_BROWSERS")
        .unwrap_or_else(|_| "chromium,firefox".into())
        .split(',')
        .map(str::to_owned)
        .collect();
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
    let runs = rounds * (1 + 2 * browsers.len() as u64);
    app.expect_unfinished_jobs(i64::try_from(runs).unwrap_or(0));
    let file = TestFile::random(size);
    let mb = size as f64 / 1e6;
    println!(
        "{} MiB in {} MiB parts, 4 at a time; each round: the CLI, then in each browser the page (parts pinned by SHA-256, then by MD5) and its floor",
        size / MIB,
        part / MIB
    );
    println!("{:<6} {:<16} {:>8} {:>9}", "round", "client", "s", "MB/s");
    let garage = pid_file(&upload_e2e::stack_dir().join("garage/pid"));
    let mut cli_cpu = Cpu::default();
    let mut cli_total = Duration::ZERO;
    // Per browser: the page by SHA-256, by MD5, the floor; and the pages' times.
    let mut pages: Vec<Browser> = browsers.iter().map(|_| Browser::default()).collect();
    let show = |round: u64, label: &str, took: Duration| {
        println!(
            "{round:<6} {label:<16} {:>8.2} {:>9.1}",
            took.as_secs_f64(),
            mb / took.as_secs_f64()
        );
    };
    for round in 1..=rounds {
        let c = cli_cpu
            .add(garage, None, cli_upload(&app, &cli, &file, part))
            .await;
        cli_total += c;
        show(round, "CLI", c);
        for (browser, b) in browsers.iter().zip(pages.iter_mut()) {
            for (digest, cpu, total) in [
                ("sha256", &mut b.sha256, &mut b.sha256_time),
                ("md5", &mut b.md5, &mut b.md5_time),
            ] {
                let p = cpu
                    .add(
                        garage,
                        Some(page_process),
                        page_upload(&app, browser, digest, &file),
                    )
                    .await;
                *total += p;
                show(round, &format!("{browser} {digest}"), p);
            }
            let f = b
                .floor
                .add(
                    garage,
                    Some(page_process),
                    browser_floor(&app, browser, &file, part),
                )
                .await;
            show(round, &format!("{browser} floor"), f);
        }
    }
    let gib = (size * rounds) as f64 / (1024 * MIB) as f64;
    println!("The browser's own CPU seconds per GiB sent (Node's share left out), all rounds:");
    println!(
        "{:<16} {:>8} {:>8} {:>11} {:>9} {:>14}",
        "page", "page", "floor", "page/floor", "target", "page/CLI MB/s"
    );
    for (browser, b) in browsers.iter().zip(&pages) {
        let floor = b.floor.browser() / gib;
        for (digest, cpu, total) in [
            ("sha256", &b.sha256, b.sha256_time),
            ("md5", &b.md5, b.md5_time),
        ] {
            let p = cpu.browser() / gib;
            println!(
                "{:<16} {p:>8.2} {floor:>8.2} {:>11.2} {:>9} {:>14.3}",
                format!("{browser} {digest}"),
                p / floor,
                match (browser.as_str(), digest) {
                    ("chromium", "sha256") => "≤ 1.3",
                    _ => "(said)",
                },
                cli_total.as_secs_f64() / total.as_secs_f64()
            );
        }
    }
    println!("CPU seconds per GiB sent, all rounds:");
    println!(
        "{:<16} {:>8} {:>8} {:>8} {:>8} {:>8} {:>8}",
        "", "client", "Garage", "server", "rest", "all", "idle"
    );
    cli_cpu.row("CLI", gib);
    for (browser, b) in browsers.iter().zip(&pages) {
        b.sha256.row(&format!("{browser} sha256"), gib);
        b.md5.row(&format!("{browser} md5"), gib);
        b.floor.row(&format!("{browser} floor"), gib);
    }
    for (browser, b) in browsers.iter().zip(&pages) {
        for (label, cpu) in [("sha256", &b.sha256), ("md5", &b.md5), ("floor", &b.floor)] {
            let by_process: Vec<String> = cpu
                .1
                .iter()
                .map(|(class, seconds)| format!("{class} {:.2}", seconds / gib))
                .collect();
            println!("{browser} {label} by process: {}", by_process.join(", "));
        }
    }
}
