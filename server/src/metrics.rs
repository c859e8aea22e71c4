//! The server's metrics, served in the Prometheus text format on their own
//! listener (`UPLOAD_METRICS_ADDR`): RPCs by method and code with their
//! durations, uploads created and completed and bytes signed and completed by
//! seller group, open watch streams, calls to the store. `RpcMetricsLayer` counts
//! every call.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Instant;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;
use upload_domain::SellerGroup;
use upload_telemetry::{DependencyCalls, Render, seconds_histogram};

/// An RPC and how it ended.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RpcLabels {
    /// `Service/Method` of a known RPC, `unknown` for any other path.
    pub method: &'static str,
    /// The gRPC code's name: `Ok`, `InvalidArgument`, ...
    pub code: &'static str,
}

/// An RPC.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct MethodLabels {
    /// `Service/Method` of a known RPC, `unknown` for any other path.
    pub method: &'static str,
}

/// A seller group.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct GroupLabels {
    /// standard or premium.
    pub group: String,
}

impl GroupLabels {
    fn of(group: SellerGroup) -> Self {
        Self {
            group: group.as_str().to_owned(),
        }
    }
}

/// Every metric the server keeps.
pub struct ServerMetrics {
    registry: Registry,
    rpcs: Family<RpcLabels, Counter>,
    rpc_seconds: Family<MethodLabels, Histogram>,
    uploads_created: Family<GroupLabels, Counter>,
    uploads_completed: Family<GroupLabels, Counter>,
    bytes_signed: Family<GroupLabels, Counter>,
    bytes_completed: Family<GroupLabels, Counter>,
    /// Open WatchProgress and WatchItem streams.
    pub open_watches: Gauge,
    /// Uploads watched now: one feed each, however many watch it.
    pub watch_feeds: Gauge,
    /// Calls to the store.
    pub store_calls: DependencyCalls,
}

impl ServerMetrics {
    /// Every metric at zero, registered.
    pub fn new() -> Arc<Self> {
        let mut registry = Registry::with_prefix("upload");
        let rpcs = Family::<RpcLabels, Counter>::default();
        registry.register(
            "rpc_requests",
            "gRPC calls by method and code",
            rpcs.clone(),
        );
        let rpc_seconds = Family::<MethodLabels, Histogram>::new_with_constructor(
            seconds_histogram as fn() -> Histogram,
        );
        registry.register(
            "rpc_duration_seconds",
            "Time from a call's arrival to its answer's headers (a stream's start)",
            rpc_seconds.clone(),
        );
        let uploads_created = Family::<GroupLabels, Counter>::default();
        registry.register(
            "uploads_created",
            "Uploads created",
            uploads_created.clone(),
        );
        let uploads_completed = Family::<GroupLabels, Counter>::default();
        registry.register(
            "uploads_completed",
            "Uploads whose parts the store assembled",
            uploads_completed.clone(),
        );
        let bytes_signed = Family::<GroupLabels, Counter>::default();
        registry.register(
            "bytes_signed",
            "Bytes of the parts signed for sending",
            bytes_signed.clone(),
        );
        let bytes_completed = Family::<GroupLabels, Counter>::default();
        registry.register(
            "bytes_completed",
            "Bytes of the uploads completed",
            bytes_completed.clone(),
        );
        let open_watches = Gauge::default();
        registry.register(
            "watch_streams_open",
            "WatchProgress and WatchItem streams open now",
            open_watches.clone(),
        );
        let watch_feeds = Gauge::default();
        registry.register(
            "watch_feeds",
            "Uploads watched now, each read by one feed whatever its watchers",
            watch_feeds.clone(),
        );
        let store_calls = DependencyCalls::registered(&mut registry);
        Arc::new(Self {
            registry,
            rpcs,
            rpc_seconds,
            uploads_created,
            uploads_completed,
            bytes_signed,
            bytes_completed,
            open_watches,
            watch_feeds,
            store_calls,
        })
    }

    /// An upload created for a seller of `group`.
    pub fn upload_created(&self, group: SellerGroup) {
        self.uploads_created
            .get_or_create(&GroupLabels::of(group))
            .inc();
    }

    /// Parts of `bytes` in all signed for a seller of `group`.
    pub fn bytes_signed(&self, group: SellerGroup, bytes: u64) {
        self.bytes_signed
            .get_or_create(&GroupLabels::of(group))
            .inc_by(bytes);
    }

    /// An upload of `bytes` completed for a seller of `group`.
    pub fn upload_completed(&self, group: SellerGroup, bytes: u64) {
        let labels = GroupLabels::of(group);
        self.uploads_completed.get_or_create(&labels).inc();
        self.bytes_completed.get_or_create(&labels).inc_by(bytes);
    }

    /// The text of a scrape.
    pub fn render(&self) -> String {
        let mut out = String::new();
        if let Err(e) = prometheus_client::encoding::text::encode(&mut out, &self.registry) {
            tracing::warn!(error = %e, "encoding the metrics failed");
        }
        out
    }

    /// What the `/metrics` listener serves.
    pub fn renderer(self: &Arc<Self>) -> Render {
        let me = Arc::clone(self);
        Arc::new(move || {
            let me = Arc::clone(&me);
            Box::pin(async move { me.render() })
        })
    }
}

/// Counts and times every call that passes.
#[derive(Clone)]
pub struct RpcMetricsLayer {
    metrics: Arc<ServerMetrics>,
}

impl RpcMetricsLayer {
    /// Counts into `metrics`.
    pub fn new(metrics: Arc<ServerMetrics>) -> Self {
        Self { metrics }
    }
}

impl<S> tower::Layer<S> for RpcMetricsLayer {
    type Service = RpcMetrics<S>;

    fn layer(&self, inner: S) -> Self::Service {
        RpcMetrics {
            inner,
            metrics: Arc::clone(&self.metrics),
        }
    }
}

/// The service [`RpcMetricsLayer`] makes.
#[derive(Clone)]
pub struct RpcMetrics<S> {
    inner: S,
    metrics: Arc<ServerMetrics>,
}

/// The code an answer's headers carry (an error answers in its headers alone);
/// none there: the call went on, `Ok`.
fn code_of(headers: &http::HeaderMap) -> &'static str {
    let code = headers
        .get("grpc-status")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<i32>().ok())
        .map_or(tonic::Code::Ok, tonic::Code::from_i32);
    code_name(code)
}

/// A code's name, as its label.
fn code_name(code: tonic::Code) -> &'static str {
    use tonic::Code as C;
    match code {
        C::Ok => "Ok",
        C::Cancelled => "Cancelled",
        C::Unknown => "Unknown",
        C::InvalidArgument => "InvalidArgument",
        C::DeadlineExceeded => "DeadlineExceeded",
        C::NotFound => "NotFound",
        C::AlreadyExists => "AlreadyExists",
        C::PermissionDenied => "PermissionDenied",
        C::ResourceExhausted => "ResourceExhausted",
        C::FailedPrecondition => "FailedPrecondition",
        C::Aborted => "Aborted",
        C::OutOfRange => "OutOfRange",
        C::Unimplemented => "Unimplemented",
        C::Internal => "Internal",
        C::Unavailable => "Unavailable",
        C::DataLoss => "DataLoss",
        C::Unauthenticated => "Unauthenticated",
    }
}

impl<S, B, ResBody> tower::Service<http::Request<B>> for RpcMetrics<S>
where
    S: tower::Service<http::Request<B>, Response = http::Response<ResBody>> + Send,
    S::Future: Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<S::Response, S::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: http::Request<B>) -> Self::Future {
        let method = upload_telemetry::rpc_method(req.uri().path());
        let metrics = Arc::clone(&self.metrics);
        let started = Instant::now();
        let answer = self.inner.call(req);
        Box::pin(async move {
            let result = answer.await;
            let code = match &result {
                Ok(response) => code_of(response.headers()),
                Err(_) => code_name(tonic::Code::Unavailable),
            };
            metrics
                .rpc_seconds
                .get_or_create(&MethodLabels { method })
                .observe(started.elapsed().as_secs_f64());
            metrics
                .rpcs
                .get_or_create(&RpcLabels { method, code })
                .inc();
            result
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_answer_without_a_status_in_its_headers_is_ok() {
        let mut headers = http::HeaderMap::new();
        assert_eq!(code_of(&headers), "Ok");
        headers.insert("grpc-status", http::HeaderValue::from_static("3"));
        assert_eq!(code_of(&headers), "InvalidArgument");
        // Every code by the name tonic gives it.
        for number in 0..=16 {
            let code = tonic::Code::from_i32(number);
            assert_eq!(code_name(code), format!("{code:?}"));
        }
    }

    #[test]
    fn a_scrape_shows_what_was_counted() {
        let m = ServerMetrics::new();
        m.upload_created(SellerGroup::Premium);
        m.bytes_signed(SellerGroup::Premium, 10);
        m.bytes_signed(SellerGroup::Premium, 5);
        let text = m.render();
        assert!(
            text.contains("upload_uploads_created_total{group=\"premium\"} 1"),
            "{text}"
        );
        assert!(
            text.contains("upload_bytes_signed_total{group=\"premium\"} 15"),
            "{text}"
        );
    }
}
