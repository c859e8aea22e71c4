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
    let rows = upload_db::snapshot::load(&mut conn, id)
        .await
        .unwrap()
        .expect("the upload");
    assert_eq!(queries.load(Ordering::SeqCst), 1, "one query per snapshot");
    // Everything the API shows came back from that one query.
    assert_eq!(rows.upload.id, id);
    assert_eq!(rows.metadata.expect("facts").md5.to_hex(), file.md5_hex);
    assert!(rows.scan.expect("verdict").verdict.is_clean());
    assert_eq!(rows.progress.len(), 5, "{:?}", rows.progress);
    assert!(rows.media.is_none(), "random bytes have no media facts");
}
