//! Many machines' worth on one: two servers and three worker processes on one
//! PostgreSQL and the three-node Garage cluster. 200 small uploads and 5 large ones
//! at once, spread over both servers and each watched through the other, while one
//! Garage node is killed and started again, one worker is SIGKILLed and one server
//! is stopped while a large upload of its own is half sent (its clients go on
//! through the other, sending only what is missing; at least that one must).
//! Every upload ends ready and then stored, each with one version and one scan,
//! nothing outside its key; the test prints uploads per minute and the p50/p99
//! time from completion to ready. Sizes: `SCALE_SMALL`, `SCALE_LARGE`,
//! `SCALE_LARGE_MIB` (defaults 200, 5, 200).

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use futures::StreamExt;
use upload_client::UploadClient;
use upload_domain::SellerGroup;
use upload_e2e::{AppOptions, MIB, TestApp, TestFile, pb, poll_until, stack_env};

use crate::{WorkerProcess, one_row_each, report, strays, temp_and_quarantine_empty};

fn setting(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// The cluster's third node, by the stack's pid file and command line.
struct ThirdNode(std::path::PathBuf);

impl ThirdNode {
    fn kill(&self) {
        let pid = std::fs::read_to_string(self.0.join("pid")).expect("pid");
        let _ = std::process::Command::new("kill")
            .args(["-KILL", pid.trim()])
            .status();
    }

    fn start(&self) {
        let cmd = std::fs::read_to_string(self.0.join("cmd")).expect("cmd");
        let _ = std::process::Command::new("sh")
            .arg("-c")
            .arg(format!(
                "nohup {} >> '{}' 2>&1 & echo $! > '{}'",
                cmd.trim(),
                self.0.join("garage.log").display(),
                self.0.join("pid").display()
            ))
            .status();
    }
}

/// Both servers' clients for one seller; the second goes away when its server
/// stops, and the seller goes on through the first.
struct Seller {
    own: UploadClient,
    other: UploadClient,
    fallback: UploadClient,
    /// Whether `own` is the second server's client.
    on_b: bool,
}

impl Seller {
    /// The client to use for the seller's own calls, and for watching.
    fn own(&self, b_gone: &AtomicBool) -> &UploadClient {
        if b_gone.load(Ordering::SeqCst) {
            &self.fallback
        } else {
            &self.own
        }
    }

    fn watcher(&self, b_gone: &AtomicBool) -> &UploadClient {
        if b_gone.load(Ordering::SeqCst) {
            &self.fallback
        } else {
            &self.other
        }
    }
}

/// Uploads that met an error and went on with only what was missing.
static RESUMED: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// The second server's large uploads under way (two parts sent, not completed):
/// the server is stopped once there is one.
static B_LARGE_UNDER_WAY: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// Creates, sends and completes `file`; after an error (its server stopped), asks
/// which parts are missing and sends only those, through whichever server is up.
async fn upload(seller: &Seller, file: &TestFile, b_gone: &AtomicBool) -> pb::Upload {
    let mut resumed = false;
    let counted = seller.on_b && file.size >= MIB * 8;
    let sent = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let created = loop {
        match seller
            .own(b_gone)
            .create("file.bin", file.size, "application/octet-stream", None)
            .await
        {
            Ok(up) => break up,
            Err(_) => tokio::time::sleep(Duration::from_millis(300)).await,
        }
    };
    let mut to_send: Vec<u32> = (1..=created.part_count).collect();
    for attempt in 1..=40 {
        let client = seller.own(b_gone);
        let sent_here = Arc::clone(&sent);
        if !to_send.is_empty() {
            let sent = client
                .send_parts(
                    &created,
                    &file.path,
                    &to_send,
                    Default::default(),
                    move |_, _| {
                        if counted && sent_here.fetch_add(1, Ordering::SeqCst) == 1 {
                            B_LARGE_UNDER_WAY.fetch_add(1, Ordering::SeqCst);
                        }
                    },
                )
                .await;
            if sent.is_err() {
                resumed = true;
                tokio::time::sleep(Duration::from_millis(300)).await;
                if let Ok(missing) = seller.own(b_gone).missing_parts(&created.upload_id).await {
                    to_send = missing;
                }
                continue;
            }
            to_send.clear();
        }
        match client.complete(&created.upload_id).await {
            Ok(done) => {
                if counted && sent.load(Ordering::SeqCst) >= 2 {
                    B_LARGE_UNDER_WAY.fetch_sub(1, Ordering::SeqCst);
                }
                if resumed {
                    RESUMED.fetch_add(1, Ordering::SeqCst);
                }
                return done;
            }
            Err(e) => {
                resumed = true;
                eprintln!("CompleteUpload attempt {attempt}: {e}");
                tokio::time::sleep(Duration::from_millis(300)).await;
                if let Ok(missing) = seller.own(b_gone).missing_parts(&created.upload_id).await {
                    to_send = missing;
                }
            }
        }
    }
    panic!("upload {} never completed", created.upload_id)
}

/// Polls GetUpload through the watching server until `state`.
async fn watch_until(seller: &Seller, id: &str, state: pb::UploadState, b_gone: &AtomicBool) {
    poll_until(
        &format!("{id} {state:?}"),
        Duration::from_secs(900),
        || async {
            let got = seller
                .watcher(b_gone)
                .get(id)
                .await
                .ok()
                .and_then(|g| g.upload);
            (got.is_some_and(|u| u.state == state as i32), ())
        },
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_servers_and_three_workers_lose_nothing_while_a_node_a_worker_and_a_server_go() {
    let small = setting("SCALE_SMALL", 200);
    let large = setting("SCALE_LARGE", 5);
    let large_mib = setting("SCALE_LARGE_MIB", 200);
    let app = TestApp::spawn_with(AppOptions {
        cluster: true,
        worker: false,
        env: vec![
            ("UPLOAD_JOB_RETRY_MAX_SECS".into(), "4".into()),
            (
                "UPLOAD_LIMIT_PREMIUM_BYTES".into(),
                (2 * large_mib * MIB).to_string(),
            ),
        ],
        ..Default::default()
    })
    .await;
    let (b_endpoint, b_server) = TestApp::spawn_replica(&app).await;
    let workers: Vec<_> = (0..3).map(|_| WorkerProcess::start(&app, None)).collect();
    let node = ThirdNode(std::path::PathBuf::from(&stack_env()["UPLOAD_CLUSTER_DIR"]).join("n3"));
    let b_gone = Arc::new(AtomicBool::new(false));

    let files: Vec<TestFile> = (0..small)
        .map(|i| TestFile::random(64 * 1024 + i * 997))
        .chain((0..large).map(|i| TestFile::random(large_mib * MIB + i)))
        .collect();
    let mut sellers = Vec::new();
    for i in 0..files.len() {
        let token = app.token(&format!("seller-scale-{i}"), SellerGroup::Premium);
        let a = app.connect_to(&app.endpoint, &token).await;
        let b = app.connect_to(&b_endpoint, &token).await;
        let fallback = app.connect_to(&app.endpoint, &token).await;
        sellers.push(if i % 2 == 0 {
            Seller {
                own: a,
                other: b,
                fallback,
                on_b: false,
            }
        } else {
            Seller {
                own: b,
                other: a,
                fallback,
                on_b: true,
            }
        });
    }

    let started = Instant::now();
    // Server B goes while one of its large uploads is under way.
    let b_stop = {
        let b_gone = Arc::clone(&b_gone);
        tokio::spawn(async move {
            while B_LARGE_UNDER_WAY.load(Ordering::SeqCst) == 0 {
                assert!(
                    started.elapsed() < Duration::from_secs(600),
                    "no large upload through server B got under way"
                );
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            b_gone.store(true, Ordering::SeqCst);
            drop(b_server);
            eprintln!("scale-out: server B stopped at {:?}", started.elapsed());
        })
    };
    // The other faults, on a clock: a node, a worker.
    let faults = {
        let mut workers = workers;
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_secs(5)).await;
            node.kill();
            eprintln!("scale-out: garage node 3 killed at {:?}", started.elapsed());
            tokio::time::sleep(Duration::from_secs(5)).await;
            let killed = workers.remove(0);
            killed.kill().await;
            eprintln!("scale-out: a worker SIGKILLed at {:?}", started.elapsed());
            tokio::time::sleep(Duration::from_secs(15)).await;
            node.start();
            eprintln!(
                "scale-out: garage node 3 started again at {:?}",
                started.elapsed()
            );
            workers
        })
    };

    let uploads: Vec<pb::Upload> = futures::stream::iter(sellers.iter().zip(&files))
        .map(|(seller, file)| {
            let b_gone = Arc::clone(&b_gone);
            async move {
                let done = upload(seller, file, &b_gone).await;
                watch_until(seller, &done.upload_id, pb::UploadState::Ready, &b_gone).await;
                done
            }
        })
        .buffered(32)
        .collect()
        .await;
    let all_ready = started.elapsed();
    let workers = faults.await.expect("the faults ran");
    b_stop.await.expect("server B was stopped");

    for (seller, up) in sellers.iter().zip(&uploads) {
        let item = upload_e2e::submit_new_item(
            seller.own(&b_gone),
            &format!("scale-{}", up.upload_id),
            pb::ItemKind::DigitalFile,
            "Scaled",
            &up.upload_id,
        )
        .await;
        let item_id = item.item.expect("item").item_id;
        let stored =
            upload_e2e::wait_item(seller.own(&b_gone), &item_id, Duration::from_secs(900)).await;
        assert_eq!(
            stored.state,
            pb::SubmissionState::Stored as i32,
            "{stored:?}"
        );
    }
    let all_stored = started.elapsed();

    // Each upload: its own hashes, one scan, one version (side effects, not job rows).
    let n = uploads.len() as i64;
    one_row_each(&app, "file_versions", &uploads).await;
    one_row_each(&app, "upload_scans", &uploads).await;
    assert_eq!(app.count("SELECT count(*) FROM file_versions").await, n);
    for (up, file) in uploads.iter().zip(&files) {
        let md5 = app
            .count(&format!(
                "SELECT count(*) FROM upload_metadata WHERE upload_id = '{}' AND md5_hex = '{}'",
                up.upload_id, file.md5_hex
            ))
            .await;
        assert_eq!(md5, 1, "hashes of {}", up.upload_id);
    }
    // Nothing outside its key.
    let at: BTreeSet<String> = files
        .iter()
        .map(|f| format!("files/{}", f.md5_hex))
        .collect();
    let regular = app.bucket(upload_storage::Bucket::Regular).to_owned();
    assert_eq!(strays(&app, &regular, &at, &[]).await, Vec::<String>::new());
    temp_and_quarantine_empty(&app).await;

    // Completion to ready, from the history.
    let mut waits: Vec<f64> = Vec::new();
    for up in &uploads {
        let ms = app
            .count(&format!(
                "SELECT (extract(epoch FROM e.at - u.completed_at) * 1000)::bigint
                   FROM upload_events e JOIN uploads u ON u.id = e.upload_id
                  WHERE e.upload_id = '{}' AND e.to_state = 'ready' ORDER BY e.id LIMIT 1",
                up.upload_id
            ))
            .await;
        waits.push(ms as f64 / 1000.0);
    }
    waits.sort_by(f64::total_cmp);
    let pct = |p: f64| waits[((waits.len() - 1) as f64 * p).round() as usize];
    let mut figures = HashMap::new();
    figures.insert("uploads", uploads.len().to_string());
    figures.insert(
        "bytes_mib",
        (files.iter().map(|f| f.size).sum::<u64>() / MIB).to_string(),
    );
    figures.insert("ready_s", format!("{:.1}", all_ready.as_secs_f64()));
    figures.insert("stored_s", format!("{:.1}", all_stored.as_secs_f64()));
    figures.insert(
        "uploads_per_min",
        format!(
            "{:.0}",
            uploads.len() as f64 / all_ready.as_secs_f64() * 60.0
        ),
    );
    figures.insert("complete_to_ready_p50_s", format!("{:.2}", pct(0.5)));
    figures.insert("complete_to_ready_p99_s", format!("{:.2}", pct(0.99)));
    figures.insert("lost", "0".into());
    figures.insert(
        "resumed_after_an_error",
        RESUMED.load(Ordering::SeqCst).to_string(),
    );
    report("scale_out", &figures);
    assert!(
        RESUMED.load(Ordering::SeqCst) >= 1,
        "server B stopped while one of its uploads was under way: that upload met an \
         error and went on through server A"
    );
    for worker in workers {
        worker.stop().await;
    }
    // The stack's cluster whole again for the tests after this one.
    let n1 = std::path::PathBuf::from(&stack_env()["UPLOAD_CLUSTER_DIR"]).join("n1/garage.toml");
    poll_until("the cluster healthy", Duration::from_secs(60), || async {
        let healthy = std::process::Command::new("garage")
            .arg("-c")
            .arg(&n1)
            .arg("status")
            .output()
            .is_ok_and(|o| {
                o.status.success() && !String::from_utf8_lossy(&o.stdout).contains("FAILED")
            });
        (healthy, ())
    })
    .await;
}
