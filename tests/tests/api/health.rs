//! The health service: readiness follows the database and the store (NOT_SERVING
//! while the store is away, SERVING again when it is back), liveness stays
//! SERVING throughout.

use std::time::Duration;

use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;
use upload_e2e::{AppOptions, FaultRules, StoreFaults, TestApp, poll_until, stack_env};

async fn status(app: &TestApp, service: &str) -> ServingStatus {
    let mut health = HealthClient::new(app.channel().await);
    let answer = health
        .check(HealthCheckRequest {
            service: service.into(),
        })
        .await
        .expect("health check")
        .into_inner();
    ServingStatus::try_from(answer.status).expect("a known status")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn not_ready_while_the_store_is_away_and_alive_throughout() {
    let store = stack_env()["UPLOAD_S3_ENDPOINT"].clone();
    let faults = StoreFaults::start(&store, FaultRules::every_kind(0.0, Duration::ZERO)).await;
    let app = TestApp::spawn_with(AppOptions {
        worker: false,
        env: [
            ("UPLOAD_S3_ENDPOINT", faults.url()),
            ("UPLOAD_S3_PUBLIC_ENDPOINT", store),
            ("UPLOAD_READINESS_INTERVAL_SECS", "1".into()),
        ]
        .map(|(k, v)| (k.to_owned(), v))
        .into(),
        ..Default::default()
    })
    .await;
    for service in [
        "",
        "upload.v1.UploadService",
        "upload.v1.ItemService",
        "liveness",
    ] {
        assert_eq!(
            status(&app, service).await,
            ServingStatus::Serving,
            "{service:?}"
        );
    }

    faults.set_outage(true);
    let away = std::time::Instant::now();
    poll_until("not ready", Duration::from_secs(20), || async {
        let now = status(&app, "").await;
        (now == ServingStatus::NotServing, now)
    })
    .await;
    eprintln!(
        "not ready {:.1} s after the store went away",
        away.elapsed().as_secs_f64()
    );
    assert_eq!(
        status(&app, "upload.v1.UploadService").await,
        ServingStatus::NotServing
    );
    assert_eq!(status(&app, "liveness").await, ServingStatus::Serving);

    faults.set_outage(false);
    poll_until("ready again", Duration::from_secs(20), || async {
        let now = status(&app, "").await;
        (now == ServingStatus::Serving, now)
    })
    .await;
    assert_eq!(
        status(&app, "upload.v1.ItemService").await,
        ServingStatus::Serving
    );
}
