//! Traces: spans exported over OTLP/gRPC when `UPLOAD_OTLP_ENDPOINT` is set (off
//! otherwise), and the W3C trace context carried from a caller's `traceparent`
//! header into the RPC's span, from the RPC (or job) that enqueues a job into the
//! job's row, and from the row into the job's span: one trace follows an upload
//! from CreateUpload through every job to its move.

use std::collections::HashMap;
use std::sync::LazyLock;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use opentelemetry::propagation::TextMapPropagator;
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_otlp::WithExportConfig;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::{BatchConfigBuilder, BatchSpanProcessor, SdkTracerProvider};
use tracing_opentelemetry::OpenTelemetrySpanExt;
use tracing_subscriber::Layer;
use upload_config::TelemetryConfig;

/// Set once traces are exported: only then is a context written or looked up.
static EXPORTING: AtomicBool = AtomicBool::new(false);

/// The header and job-row key the context travels under.
pub const TRACEPARENT: &str = "traceparent";

/// Logs and traces for the process; dropping it flushes the spans not yet sent.
pub struct Telemetry {
    provider: Option<SdkTracerProvider>,
}

impl Telemetry {
    /// Sends every span still buffered, and stops exporting.
    pub fn shutdown(&mut self) {
        if let Some(provider) = self.provider.take() {
            // Blocking: off the async threads.
            let _ = std::thread::spawn(move || provider.shutdown()).join();
        }
    }
}

impl Drop for Telemetry {
    fn drop(&mut self) {
        self.shutdown();
    }
}

/// Installs logs as configured and, with an OTLP endpoint, the span exporter
/// naming this process `service`. Must be called within a tokio runtime.
pub fn init(config: &TelemetryConfig, service: &'static str) -> anyhow::Result<Telemetry> {
    let (provider, layer) = match &config.otlp_endpoint {
        None => (None, None),
        Some(endpoint) => {
            let exporter = opentelemetry_otlp::SpanExporter::builder()
                .with_tonic()
                .with_endpoint(endpoint.clone())
                .with_timeout(Duration::from_secs(5))
                .build()?;
            let processor = BatchSpanProcessor::builder(exporter)
                .with_batch_config(
                    BatchConfigBuilder::default()
                        .with_scheduled_delay(Duration::from_millis(500))
                        .build(),
                )
                .build();
            let provider = SdkTracerProvider::builder()
                .with_span_processor(processor)
                .with_resource(
                    opentelemetry_sdk::Resource::builder()
                        .with_service_name(service)
                        .build(),
                )
                .build();
            // A span carries its name, its fields and its events: no code
            // location, thread, target or busy/idle attributes, and no OpenTelemetry
            // context made current on every poll (nothing here reads it; the
            // context travels by `current_traceparent`). Each costs every RPC.
            let layer = tracing_opentelemetry::layer()
                .with_tracer(provider.tracer(service))
                .with_location(false)
                .with_threads(false)
                .with_target(false)
                .with_tracked_inactivity(false)
                .with_context_activation(false)
                .boxed();
            (Some(provider), Some(layer))
        }
    };
    tracing::subscriber::set_global_default(crate::logs::subscriber(
        config.log_format,
        std::io::stderr,
        layer,
    ))?;
    if provider.is_some() {
        opentelemetry::global::set_text_map_propagator(TraceContextPropagator::new());
        EXPORTING.store(true, Ordering::SeqCst);
    }
    Ok(Telemetry { provider })
}

/// Whether traces are exported by this process.
pub fn exporting() -> bool {
    EXPORTING.load(Ordering::Relaxed)
}

/// The current span's context as a `traceparent` value, when traces are exported.
pub fn current_traceparent() -> Option<String> {
    if !exporting() {
        return None;
    }
    let mut carrier = HashMap::new();
    TraceContextPropagator::new().inject_context(&tracing::Span::current().context(), &mut carrier);
    carrier.remove(TRACEPARENT)
}

/// Makes `span` a child of the context `traceparent` names.
pub fn continue_trace(span: &tracing::Span, traceparent: &str) {
    let carrier = HashMap::from([(TRACEPARENT.to_owned(), traceparent.to_owned())]);
    let parent = TraceContextPropagator::new().extract(&carrier);
    let _ = span.set_parent(parent);
}

/// The paths named in spans and metrics: the API's RPCs, health and reflection.
/// Every other path (a caller's invention) is `unknown`, so names, labels and
/// log fields stay bounded whatever arrives, authenticated or not.
static KNOWN_PATHS: LazyLock<HashMap<String, &'static str>> = LazyLock::new(|| {
    let ours = upload_domain::Rpc::ALL.iter().map(|rpc| rpc.path());
    let standard = [
        "/grpc.health.v1.Health/Check",
        "/grpc.health.v1.Health/Watch",
        "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo",
        "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo",
    ]
    .map(str::to_owned);
    ours.chain(standard)
        .map(|path| {
            let (service, method) = path
                .trim_start_matches('/')
                .split_once('/')
                .unwrap_or_default();
            let service = service.rsplit('.').next().unwrap_or(service);
            let name: &'static str = Box::leak(format!("{service}/{method}").into_boxed_str());
            (path, name)
        })
        .collect()
});

/// What every path that is not a known RPC is named.
pub const UNKNOWN_RPC: &str = "unknown";

/// `Service/Method` of a known request path `/package.Service/Method`, or
/// [`UNKNOWN_RPC`]: how RPCs are named in spans and metrics. Costs no allocation.
pub fn rpc_method(path: &str) -> &'static str {
    KNOWN_PATHS.get(path).copied().unwrap_or(UNKNOWN_RPC)
}

/// The span of one RPC, named `Service/Method`, a child of the caller's
/// `traceparent` header when it sent one.
pub fn rpc_span<B>(req: &http::Request<B>) -> tracing::Span {
    let method = rpc_method(req.uri().path());
    let span = tracing::info_span!("rpc", otel.name = %method);
    if exporting()
        && let Some(parent) = req.headers().get(TRACEPARENT).and_then(|v| v.to_str().ok())
    {
        continue_trace(&span, parent);
    }
    span
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn methods_are_named_by_service_and_method() {
        assert_eq!(
            rpc_method("/upload.v1.UploadService/CreateUpload"),
            "UploadService/CreateUpload"
        );
        assert_eq!(rpc_method("/grpc.health.v1.Health/Check"), "Health/Check");
        for made_up in [
            "/",
            "",
            "/upload.v1.UploadService/Nope",
            "/upload.v1.ItemService/CreateUpload",
            "/x.y/z",
            "/grpc.health.v1.Health/Check/extra",
        ] {
            assert_eq!(rpc_method(made_up), UNKNOWN_RPC, "{made_up}");
        }
    }
}
