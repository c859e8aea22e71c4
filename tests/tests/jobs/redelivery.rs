//! Every pipeline job delivered twice at once (a worker that died after the work,
//! before the ack) gives the same rows and objects as once.

use upload_db::jobs::UploadJob;
use upload_domain::UploadId;
use upload_e2e::{AppOptions, TestApp, TestFile, pb};

/// Everything the pipeline recorded about the test's uploads, timestamps left out.
async fn recorded(app: &TestApp) -> Vec<String> {
    let mut rows = Vec::new();
    for sql in [
        "SELECT state || coalesce(failure_code, '') AS v FROM uploads ORDER BY id",
        "SELECT concat_ws('|', md5_hex, sha256_hex, size_bytes, sniffed_content_type) AS v FROM upload_metadata ORDER BY upload_id",
        "SELECT concat_ws('|', verdict, signature, bytes_scanned, quarantine_key) AS v FROM upload_scans ORDER BY upload_id",
        "SELECT concat_ws('|', container, duration_ms, width, height, video_codec, audio_codec, frame_rate) AS v FROM upload_media ORDER BY upload_id",
        "SELECT concat_ws('|', name, kind, object_key, width, height, size_bytes) AS v FROM upload_previews ORDER BY upload_id, name",
        "SELECT concat_ws('|', stage, status, bytes_done, bytes_total, detail) AS v FROM upload_progress ORDER BY upload_id, stage",
        "SELECT concat_ws('|', kind, message) AS v FROM notifications ORDER BY id",
        "SELECT concat_ws('|', job_type, idempotency_key) AS v FROM apalis.jobs ORDER BY job_type, idempotency_key",
    ] {
        use diesel_async::RunQueryDsl;
        #[derive(diesel::QueryableByName)]
        struct V {
            #[diesel(sql_type = diesel::sql_types::Text)]
            v: String,
        }
        let mut conn = app.db().await;
        let found: Vec<V> = diesel::sql_query(sql).load(&mut conn).await.unwrap();
        rows.extend(found.into_iter().map(|r| r.v));
    }
    rows
}

/// The preview objects of an upload, with their ETags.
async fn preview_objects(app: &TestApp, id: &str) -> Vec<(String, String)> {
    let out = app
        .store
        .client()
        .list_objects_v2()
        .bucket(app.store.bucket_name(upload_storage::Bucket::Temp))
        .prefix(format!("previews/{id}/"))
        .send()
        .await
        .unwrap();
    out.contents()
        .iter()
        .map(|o| {
            (
                o.key().unwrap_or_default().to_owned(),
                o.e_tag().unwrap_or_default().to_owned(),
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_job_delivered_twice_at_once_gives_the_same_rows_and_objects() {
    // No worker: the test plays apalis, delivering every job twice concurrently
    // (as a redelivery after a lost heartbeat would), then a third time.
    let app = TestApp::spawn_with(AppOptions {
        worker: false,
        ..Default::default()
    })
    .await;
    // The jobs run by hand here; their queued rows stay with no worker to run them.
    app.expect_unfinished_jobs(3);
    let ctx = app.job_context().await;
    let video = TestFile::video(3, 320, 240);
    let (client, upload) = app
        .upload_whole("seller-twice", &video, "trailer.mp4", "video/mp4")
        .await;
    let job = UploadJob::first(upload.upload_id.parse::<UploadId>().unwrap());

    let (a, b) = tokio::join!(
        upload_worker::scan::run(&ctx, job),
        upload_worker::scan::run(&ctx, job)
    );
    a.unwrap();
    b.unwrap();
    let (a, b, c, d) = tokio::join!(
        upload_worker::metadata::run(&ctx, job),
        upload_worker::metadata::run(&ctx, job),
        upload_worker::preview::run(&ctx, job),
        upload_worker::preview::run(&ctx, job)
    );
    for r in [a, b, c, d] {
        r.unwrap();
    }
    let ready = client.get(&upload.upload_id).await.unwrap().upload.unwrap();
    assert_eq!(ready.state, pb::UploadState::Ready as i32, "{ready:?}");
    let rows = recorded(&app).await;
    let objects = preview_objects(&app, &upload.upload_id).await;
    assert_eq!(objects.len(), 2, "{objects:?}");
    // One scan verdict, one job per follow-up queue, no notification for a clean file.
    assert_eq!(app.count("SELECT count(*) FROM upload_scans").await, 1);
    assert_eq!(
        app.count("SELECT count(*) FROM apalis.jobs WHERE job_type = 'upload.metadata'")
            .await,
        1
    );
    assert_eq!(
        app.count("SELECT count(*) FROM apalis.jobs WHERE job_type = 'upload.preview'")
            .await,
        1
    );
    assert_eq!(app.count("SELECT count(*) FROM upload_previews").await, 2);

    // A late third delivery of each finds the work done and changes nothing.
    upload_worker::scan::run(&ctx, job).await.unwrap();
    upload_worker::metadata::run(&ctx, job).await.unwrap();
    upload_worker::preview::run(&ctx, job).await.unwrap();
    assert_eq!(recorded(&app).await, rows);
    assert_eq!(preview_objects(&app, &upload.upload_id).await, objects);

    // A preview job that died after storing its objects but before recording them
    // is delivered again: it remakes the same objects under the same keys.
    app.execute("DELETE FROM upload_previews").await;
    app.execute("UPDATE upload_progress SET status = 'running' WHERE stage = 'preview'")
        .await;
    app.execute("UPDATE uploads SET state = 'processing'").await;
    upload_worker::preview::run(&ctx, job).await.unwrap();
    assert_eq!(recorded(&app).await, rows);
    assert_eq!(preview_objects(&app, &upload.upload_id).await, objects);
}
