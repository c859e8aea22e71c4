#![doc = include_str!("../README.md")]
//!
//! Where things live: `api` the UploadService handlers and `items` the
//! ItemService ones, one file per family of calls; `snapshot` the one read model
//! of an upload they return; `convert` the protobuf forms; `error` every reason a
//! call fails with its status; `auth` the token layer; `state` what handlers
//! share; `fair_use` the per-caller limits; `metrics` what Prometheus scrapes;
//! `readiness` readiness and liveness on the health service; `rpc_log` what
//! the log says of failed calls; `part_recorder` the
//! group commit of signed parts; `progress_hub` LISTEN/NOTIFY; `upload_feeds` the one poller of each watched upload; `tls` the gRPC
//! port's TLS with certificates reloaded from their files; `admin`,
//! `admin_show` and `admin_quarantine` the `upload-admin` tool; `config_check` `upload-server config check`.

pub mod admin;
mod admin_quarantine;
mod admin_show;
pub mod api;
pub mod auth;
pub mod config_check;
mod convert;
pub mod error;
pub mod fair_use;
pub mod items;
pub mod metrics;
pub mod part_recorder;
pub mod progress_hub;
pub mod readiness;
mod rpc_log;
pub mod snapshot;
pub mod state;
pub mod tls;
pub mod upload_feeds;

use std::sync::Arc;

use tokio::net::TcpListener;
use tonic::transport::server::TcpIncoming;
use tower_http::cors::{AllowOrigin, CorsLayer};
use upload_config::ServerConfig;
use upload_proto::v1::item_service_server::ItemServiceServer;
use upload_proto::v1::upload_service_server::UploadServiceServer;
use upload_storage::Store;

use crate::api::UploadApi;
use crate::auth::{AuthLayer, TokenKeys};
use crate::fair_use::FairUse;
use crate::items::ItemApi;
use crate::metrics::{RpcMetricsLayer, ServerMetrics};
use crate::part_recorder::PartRecorder;
use crate::progress_hub::ProgressHub;
use crate::state::{AppState, FactsCache};
use upload_telemetry::MetricsListener;

/// Connects to the database and the store and starts the background tasks.
pub async fn build_state(cfg: &ServerConfig) -> anyhow::Result<Arc<AppState>> {
    let pool = upload_db::connect_pool(&cfg.database.url, cfg.database.pool_size).await?;
    let metrics = ServerMetrics::new();
    Ok(Arc::new(AppState {
        recorder: PartRecorder::start(pool.clone(), 2),
        hub: ProgressHub::start(cfg.database.url.clone(), pool.clone()),
        feeds: crate::upload_feeds::UploadFeeds::counted_in(metrics.watch_feeds.clone()),
        pool,
        store: Store::new(&cfg.store).observed_by(metrics.store_calls.clone()),
        policy: cfg.policy.clone(),
        facts: FactsCache::default(),
        fair_use: FairUse::new(cfg.fair_use).counting_watches(metrics.open_watches.clone()),
        metrics,
    }))
}

/// Aborts a background task when dropped (when serving ends).
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Resolves on SIGTERM (what orchestrators send) or Ctrl-C.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {}
        () = term => {}
    }
}

/// Serves the API on `listener` until `shutdown` resolves.
pub async fn serve(
    cfg: &ServerConfig,
    state: Arc<AppState>,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send,
) -> anyhow::Result<()> {
    let (health, health_service) = tonic_health::server::health_reporter();
    // Ready once the first check (made now) finds the database and the store answering.
    let _stop_readiness =
        AbortOnDrop(readiness::start(Arc::clone(&state), health, cfg.readiness_interval).await);
    let reflection = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(upload_proto::v1::FILE_DESCRIPTOR_SET)
        .build_v1()?;
    // v1alpha too: older grpcurl builds and Python's grpcio-reflection ask for it.
    let reflection_v1alpha = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(upload_proto::v1::FILE_DESCRIPTOR_SET)
        .build_v1alpha()?;
    let keys = TokenKeys::from_config(&cfg.auth)
        .await
        .map_err(|e| anyhow::anyhow!("bearer-token keys: {e}"))?;
    // Browsers reach the API through gRPC-web; they need CORS for it, from the
    // configured origins alone.
    let origins = cfg.cors_origins.clone();
    let cors = CorsLayer::new()
        .allow_origin(AllowOrigin::predicate(move |origin, _| {
            origin.to_str().is_ok_and(|o| origins.allows(o))
        }))
        .allow_headers(tower_http::cors::Any)
        .allow_methods([http::Method::POST, http::Method::OPTIONS])
        .expose_headers([
            http::HeaderName::from_static("grpc-status"),
            http::HeaderName::from_static("grpc-message"),
            // The refusal's ErrorInfo, BadRequest and RetryInfo: a page reads the
            // reason it branches on from it.
            http::HeaderName::from_static("grpc-status-details-bin"),
        ]);
    // Scraped on a listener of its own, for as long as the API is served.
    let _metrics = match cfg.metrics_addr {
        Some(addr) => Some(MetricsListener::serve(
            TcpListener::bind(addr).await?,
            state.metrics.renderer(),
        )?),
        None => None,
    };
    // Refusals are counted, not logged one by one: outsiders choose how many arrive.
    let failures = Arc::new(rpc_log::FailureLog::default());
    let router = tonic::transport::Server::builder()
        .accept_http1(true)
        .layer(
            tower_http::trace::TraceLayer::new_for_grpc()
                .make_span_with(|req: &http::Request<_>| upload_telemetry::rpc_span(req))
                .on_failure(
                    move |class: tower_http::classify::GrpcFailureClass,
                          latency: std::time::Duration,
                          _: &tracing::Span| failures.failed(&class, latency),
                ),
        )
        // RPCs are counted where they are scraped.
        .layer(tower::util::option_layer(
            cfg.metrics_addr
                .map(|_| RpcMetricsLayer::new(Arc::clone(&state.metrics))),
        ))
        .layer(cors)
        .layer(tonic_web::GrpcWebLayer::new())
        .layer(
            AuthLayer::new(keys)
                .with_mtls(auth::MtlsServices::new(
                    cfg.tls
                        .as_ref()
                        .map_or(&[][..], |tls| tls.mtls_services.as_slice()),
                ))
                .with_delegations(auth::Delegations::new(&cfg.auth.delegations)),
        )
        .add_service(health_service)
        .add_service(reflection)
        .add_service(reflection_v1alpha)
        .add_service(UploadServiceServer::new(UploadApi::new(Arc::clone(&state))))
        .add_service(ItemServiceServer::new(ItemApi::new(state)));
    match &cfg.tls {
        Some(tls) => {
            let acceptor =
                tls::acceptor(tls).map_err(|e| anyhow::anyhow!("TLS (UPLOAD_TLS_CERT): {e}"))?;
            router
                .serve_with_incoming_shutdown(tls::incoming(listener, acceptor), shutdown)
                .await?;
        }
        None => {
            router
                .serve_with_incoming_shutdown(
                    // Small unary calls must not wait on Nagle's algorithm (40 ms per call).
                    TcpIncoming::from(listener).with_nodelay(Some(true)),
                    shutdown,
                )
                .await?;
        }
    }
    Ok(())
}
