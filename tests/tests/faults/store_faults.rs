//! A store that fails a tenth of the requests the server and the worker make
//! (resets, 503 SlowDown, 500 InternalError, stalls past the time-out, bodies cut
//! half-way) while twenty uploads go through parts, completion, scan, previews and
//! the move: every one ends ready and then stored, with its own hashes, one
//! version, and nothing in any bucket outside its key.

use std::collections::{BTreeSet, HashMap};
use std::time::{Duration, Instant};

use upload_e2e::{
    AppOptions, Fault, FaultRules, MIB, StoreFaults, TestApp, TestFile, pb, stack_env,
    submit_new_item, wait_item,
};

use crate::{report, strays, temp_and_quarantine_empty, upload, wait_state};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tenth_of_store_requests_failing_loses_nothing() {
    let store = stack_env()["UPLOAD_S3_ENDPOINT"].clone();
    let faults =
        StoreFaults::start(&store, FaultRules::every_kind(0.10, Duration::from_secs(3))).await;
    let app = TestApp::spawn_with(AppOptions {
        env: [
            ("UPLOAD_S3_ENDPOINT", faults.url()),
            // Sellers' clients send their parts to the store itself.
            ("UPLOAD_S3_PUBLIC_ENDPOINT", store.clone()),
            // A stall counts as a failure after two seconds.
            ("UPLOAD_S3_READ_TIMEOUT_SECS", "2".into()),
            ("UPLOAD_JOB_RETRY_MAX_SECS", "4".into()),
        ]
        .map(|(k, v)| (k.to_owned(), v))
        .into(),
        ..Default::default()
    })
    .await;
    let started = Instant::now();
    // Fifteen files of random bytes in one to three parts, five images (previews).
    let files: Vec<(TestFile, &str, &str)> = (0..20u64)
        .map(|i| {
            if i % 4 == 3 {
                (
                    TestFile::image(200 + 10 * u32::try_from(i).unwrap(), 150),
                    "cover.png",
                    "image/png",
                )
            } else {
                (
                    TestFile::random((1 + i % 3) * 6 * MIB + i),
                    "data.bin",
                    "application/octet-stream",
                )
            }
        })
        .collect();
    let uploads = futures::future::join_all(files.iter().enumerate().map(
        |(i, (file, name, content_type))| {
            let app = &app;
            async move { upload(app, &format!("seller-{i}"), file, name, content_type).await }
        },
    ))
    .await;
    let mut ready = Vec::new();
    for ((client, up), (file, _, _)) in uploads.iter().zip(&files) {
        let done = wait_state(
            client,
            &up.upload_id,
            pb::UploadState::Ready,
            Duration::from_secs(240),
        )
        .await;
        let facts = done.metadata.clone().expect("hashes");
        assert_eq!(
            (facts.md5_hex.as_str(), facts.sha256_hex.as_str()),
            (file.md5_hex.as_str(), file.sha256_hex.as_str()),
            "hashes of upload {}",
            up.upload_id
        );
        ready.push(done);
    }
    let to_ready = started.elapsed();

    let mut items = Vec::new();
    for (i, ((client, up), _)) in uploads.iter().zip(&files).enumerate() {
        let res = submit_new_item(
            client,
            &format!("faulted-{i}"),
            pb::ItemKind::DigitalFile,
            "Faulted",
            &up.upload_id,
        )
        .await;
        items.push(res.item.expect("item").item_id);
    }
    for ((client, _), item_id) in uploads.iter().zip(&items) {
        let item = wait_item(client, item_id, Duration::from_secs(240)).await;
        assert_eq!(item.state, pb::SubmissionState::Stored as i32, "{item:?}");
    }

    // One version per upload, no duplicate.
    assert_eq!(app.count("SELECT count(*) FROM file_versions").await, 20);
    assert_eq!(
        app.count("SELECT count(DISTINCT upload_id) FROM file_versions")
            .await,
        20
    );
    // Nothing outside its key: files at their MD5, previews beside them, the temp
    // bucket emptied, nothing in quarantine.
    let files_at: BTreeSet<String> = files
        .iter()
        .map(|(f, _, _)| format!("files/{}", f.md5_hex))
        .collect();
    let previews_at: Vec<String> = files
        .iter()
        .filter(|(_, _, t)| *t == "image/png")
        .map(|(f, _, _)| format!("previews/{}/", f.md5_hex))
        .collect();
    let regular = app.bucket(upload_storage::Bucket::Regular).to_owned();
    assert_eq!(
        strays(&app, &regular, &files_at, &previews_at).await,
        Vec::<String>::new()
    );
    for key in &files_at {
        assert_eq!(
            app.keys(&regular, key).await,
            vec![key.clone()],
            "{key} stored"
        );
    }
    temp_and_quarantine_empty(&app).await;

    let faulted = faults.stats.faulted();
    for kind in Fault::ALL {
        assert!(
            faulted.get(&kind).copied().unwrap_or(0) > 0,
            "no {kind:?} injected: {faulted:?}"
        );
    }
    let requests = faults
        .stats
        .requests
        .load(std::sync::atomic::Ordering::SeqCst);
    let mut figures: HashMap<&str, String> = HashMap::new();
    figures.insert("requests", requests.to_string());
    figures.insert("faults", faults.stats.faults().to_string());
    figures.insert("by_kind", format!("{faulted:?}").replace(' ', ""));
    figures.insert("uploads", "20".into());
    figures.insert("lost", "0".into());
    figures.insert("duplicates", "0".into());
    figures.insert("to_ready_s", format!("{:.1}", to_ready.as_secs_f64()));
    figures.insert(
        "to_stored_s",
        format!("{:.1}", started.elapsed().as_secs_f64()),
    );
    report("store faults", &figures);
}
