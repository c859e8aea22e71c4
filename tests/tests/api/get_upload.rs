//! GetUpload: the upload's one snapshot (state, stages, hashes, verdict, media,
//! previews), read in a single query; another seller's upload is not found.

use diesel::connection::InstrumentationEvent;
use diesel_async::AsyncConnection;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use upload_domain::{SellerGroup, UploadId};
use upload_e2e::{MIB, TestApp, TestFile, code, pb};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_ready_upload_shows_its_stages_hashes_and_clean_verdict() {
    let app = TestApp::spawn().await;
    let file = TestFile::image(320, 200);
    let (client, up) = app
        .ready_upload("seller-get", &file, "cover.png", "image/png")
        .await;
    let got = client.get(&up.upload_id).await.expect("GetUpload");
    let upload = got.upload.expect("upload");
    assert_eq!(upload.state, pb::UploadState::Ready as i32);
    let facts = upload.metadata.expect("metadata");
    assert_eq!(
        (facts.md5_hex.as_str(), facts.sha256_hex.as_str()),
        (file.md5_hex.as_str(), file.sha256_hex.as_str())
    );
    assert_eq!(facts.size_bytes, file.size);
    assert_eq!(facts.sniffed_content_type, "image/png");
    let scan = upload.scan.expect("a verdict");
    assert_eq!(scan.verdict, pb::ScanVerdict::Clean as i32);
    assert_eq!(upload.media.expect("media facts").width, 320);
    assert!(!upload.previews.is_empty());
    let stages: Vec<(i32, i32)> = got.stages.iter().map(|s| (s.stage, s.status)).collect();
    assert_eq!(
        stages,
        [
            pb::Stage::Upload,
            pb::Stage::Scan,
            pb::Stage::Hash,
            pb::Stage::Metadata,
            pb::Stage::Preview
        ]
        .iter()
        .map(|s| (*s as i32, pb::StageStatus::Done as i32))
        .collect::<Vec<_>>(),
        "{:?}",
        got.stages
    );
    // The same snapshot is not another seller's to see.
    let other = app.client("seller-nosy", SellerGroup::Standard).await;
    let refused = other
        .api()
        .get_upload(pb::GetUploadRequest {
            upload_id: up.upload_id.clone(),
            include_history: false,
        })
        .await;
    assert_eq!(code(refused), tonic::Code::NotFound);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_snapshot_of_a_processed_upload_is_one_query() {
    let app = TestApp::spawn().await;
    let file = TestFile::random(MIB);
    let (_, up) = app
        .ready_upload("seller-count", &file, "a.bin", "application/octet-stream")
        .await;
    let id: UploadId = up.upload_id.parse().unwrap();
    let mut conn = app.db().await;
    let queries = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&queries);
    conn.set_instrumentation(move |event: InstrumentationEvent<'_>| {
        if matches!(event, InstrumentationEvent::StartQuery { .. }) {
            counter.fetch_add(1, Ordering::SeqCst);
        }
    });
    let rows = upload_db::snapshot::load(&mut conn, id, true)
        .await
        .unwrap()
        .expect("the upload");
    assert_eq!(queries.load(Ordering::SeqCst), 1, "one query per snapshot");
    // Everything the API shows came back from that one query.
    assert_eq!(rows.upload.id, id);
    assert_eq!(rows.metadata.expect("facts").md5.to_hex(), file.md5_hex);
    assert_eq!(
        rows.scan.expect("verdict").verdict,
        upload_domain::ScanVerdict::Clean
    );
    assert_eq!(rows.progress.len(), 5, "{:?}", rows.progress);
    assert!(rows.media.is_none(), "random bytes have no media facts");
}

/// One line of history as (from, to, cause, actor, attempt), for comparing.
fn lines(history: &[pb::UploadChange]) -> Vec<(i32, i32, i32, String, u32)> {
    history
        .iter()
        .map(|c| {
            (
                c.from_state,
                c.to_state,
                c.cause,
                c.actor.clone(),
                c.attempt,
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_history_shows_every_change_with_its_cause_and_who_made_it() {
    use pb::ChangeCause as C;
    use pb::UploadState as S;
    let app = TestApp::spawn().await;
    let file = TestFile::random(MIB);
    let (client, up, _item) = app
        .stored_item(
            "seller-hist",
            &file,
            ("a.bin", "application/octet-stream"),
            "History",
        )
        .await;
    // Without asking, no history (the snapshot stays one query either way).
    let plain = client.get(&up.upload_id).await.expect("GetUpload");
    assert!(plain.history.is_empty());
    let got = client
        .history(&up.upload_id)
        .await
        .expect("GetUpload with history");
    let seller = "seller:seller-hist".to_owned();
    let job = |queue: &str| format!("job:{queue}");
    let mut expected = vec![
        (S::Unspecified, S::Created, C::Created, seller.clone(), 0),
        (S::Created, S::Uploading, C::PartSigned, seller.clone(), 0),
        (S::Uploading, S::Uploaded, C::Completed, seller.clone(), 0),
        (
            S::Uploaded,
            S::Scanning,
            C::ScanStarted,
            job("upload.scan"),
            1,
        ),
        (
            S::Scanning,
            S::Processing,
            C::Scanned,
            job("upload.scan"),
            1,
        ),
    ];
    // Whichever processing stage finished last made it ready.
    let ready_by = got
        .history
        .iter()
        .find(|c| c.cause == C::ProcessingDone as i32)
        .map(|c| c.actor.clone())
        .expect("a processing_done line");
    assert!(
        [job("upload.metadata"), job("upload.preview")].contains(&ready_by),
        "{ready_by}"
    );
    expected.extend([
        (S::Processing, S::Ready, C::ProcessingDone, ready_by, 1),
        (S::Ready, S::Submitted, C::Submitted, seller.clone(), 0),
        (S::Submitted, S::Stored, C::Stored, job("item.move"), 1),
    ]);
    let expected: Vec<_> = expected
        .into_iter()
        .map(|(f, t, c, a, n)| (f as i32, t as i32, c as i32, a, n))
        .collect();
    assert_eq!(lines(&got.history), expected, "{:#?}", got.history);
    // Each line starts where the one before ended, in time order, and the last
    // ends in the upload's state.
    for pair in got.history.windows(2) {
        assert_eq!(pair[0].to_state, pair[1].from_state);
        let at = |c: &pb::UploadChange| c.at.map(|t| (t.seconds, t.nanos));
        assert!(at(&pair[0]) <= at(&pair[1]), "{pair:?}");
    }
    assert_eq!(
        got.history.last().map(|c| c.to_state),
        got.upload.map(|u| u.state)
    );
    // The submission's own history, as ops read it with SQL.
    let rows = app
        .count(
            "SELECT count(*) FROM submission_events e JOIN item_submissions s ON s.id = e.submission_id \
             WHERE s.owner_id = 'seller-hist' AND e.actor = 'seller:seller-hist' AND e.cause = 'created'",
        )
        .await;
    assert_eq!(rows, 1);
    let moved = app
        .count(
            "SELECT count(*) FROM submission_events \
             WHERE (from_state, to_state, actor, attempt) IN \
             (('queued', 'persisted', 'job:item.persist', 1), ('persisted', 'stored', 'job:item.move', 1))",
        )
        .await;
    assert_eq!(moved, 2);
    // The history is append-only.
    let mut conn = app.db().await;
    let refused = diesel_async::RunQueryDsl::execute(
        diesel::sql_query("UPDATE upload_events SET actor = 'someone else'"),
        &mut conn,
    )
    .await
    .expect_err("history rows cannot be changed");
    assert!(refused.to_string().contains("append-only"), "{refused}");
}
