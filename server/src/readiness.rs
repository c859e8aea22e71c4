//! Readiness and liveness on the gRPC health service. Ready (`""` and both API
//! services SERVING) while the database and the store answer; NOT_SERVING while
//! either does not, so a balancer or Kubernetes' gRPC readiness probe stops
//! sending calls this process cannot serve. `liveness` stays SERVING for as long
//! as the process answers at all: a liveness probe must not restart a server
//! because its database is away.

use std::sync::Arc;
use std::time::Duration;

use tonic_health::ServingStatus;
use tonic_health::server::HealthReporter;

use crate::state::AppState;

/// The health service name the liveness probe asks for.
pub const LIVENESS: &str = "liveness";

/// The services whose status follows readiness: the whole server (`""`) and
/// each API service.
const READY_SERVICES: [&str; 3] = ["", "upload.v1.UploadService", "upload.v1.ItemService"];

/// How long one check of a dependency may take before it counts as away.
const CHECK_TIMEOUT: Duration = Duration::from_secs(3);

/// Whether the database and the store answer now, and if not, which did not.
pub async fn check(state: &AppState) -> Result<(), String> {
    let database = async {
        let mut conn = state.pool.get().await.map_err(|e| e.to_string())?;
        diesel_async::RunQueryDsl::execute(diesel::sql_query("SELECT 1"), &mut conn)
            .await
            .map(|_| ())
            .map_err(|e| e.to_string())
    };
    let (database, store) = tokio::join!(
        tokio::time::timeout(CHECK_TIMEOUT, database),
        tokio::time::timeout(CHECK_TIMEOUT, state.store.reachable())
    );
    match (database, store) {
        (Ok(Ok(())), Ok(Ok(()))) => Ok(()),
        (Ok(Err(e)), _) => Err(format!("database: {e}")),
        (Err(_), _) => Err("database: no answer within 3 s".into()),
        (_, Ok(Err(e))) => Err(format!("store: {e}")),
        (_, Err(_)) => Err("store: no answer within 3 s".into()),
    }
}

/// Sets liveness and the first readiness (checked now), then keeps readiness
/// current on a task of its own, checked every `every`.
pub async fn start(
    state: Arc<AppState>,
    reporter: HealthReporter,
    every: Duration,
) -> tokio::task::JoinHandle<()> {
    reporter
        .set_service_status(LIVENESS, ServingStatus::Serving)
        .await;
    let mut ready = update(&state, &reporter, None).await;
    tokio::spawn(async move {
        loop {
            tokio::time::sleep(every).await;
            ready = update(&state, &reporter, Some(ready)).await;
        }
    })
}

/// Checks once and reports a change from `was`; returns whether ready.
async fn update(state: &AppState, reporter: &HealthReporter, was: Option<bool>) -> bool {
    let now = check(state).await;
    if was != Some(now.is_ok()) {
        match &now {
            Ok(()) => tracing::info!("ready: the database and the store answer"),
            Err(why) => tracing::warn!(%why, "not ready"),
        }
        let status = if now.is_ok() {
            ServingStatus::Serving
        } else {
            ServingStatus::NotServing
        };
        for service in READY_SERVICES {
            reporter.set_service_status(service, status).await;
        }
    }
    now.is_ok()
}
