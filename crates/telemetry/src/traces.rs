//! Traces: spans exported over OTLP/gRPC when `UPLOAD_OTLP_ENDPOINT` is set (off
//! otherwise), and the W3C trace context carried from a caller's `traceparent`
//! header into the RPC's span, from the RPC (or job) that enqueues a job into the
//! job's row, and from the row into the job's span: one trace follows an upload
//! from CreateUpload through every job to its move.

use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{LazyLock, PoisonError, RwLock};
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

/// How many paths' names are kept: the service's RPCs, health and reflection fit
/// many times over; paths beyond (a caller's made-up ones) are named each time.
const NAMES_KEPT: usize = 256;

/// `Service/Method` of a request path `/package.Service/Method`: how RPCs are
/// named in spans and metrics. Each path is named once and kept: an RPC costs no
/// allocation for its name.
pub fn rpc_method(path: &str) -> Cow<'static, str> {
    static NAMES: LazyLock<RwLock<HashMap<String, &'static str>>> = LazyLock::new(RwLock::default);
    if let Some(name) = NAMES
        .read()
        .unwrap_or_else(PoisonError::into_inner)
        .get(path)
    {
        return Cow::Borrowed(name);
    }
    let name = {
        let trimmed = path.trim_start_matches('/');
        match trimmed.split_once('/') {
            Some((service, method)) => {
                let service = service.rsplit('.').next().unwrap_or(service);
                format!("{service}/{method}")
            }
            None => "unknown".to_owned(),
        }
    };
    let mut names = NAMES.write().unwrap_or_else(PoisonError::into_inner);
    if names.len() >= NAMES_KEPT {
        return Cow::Owned(name);
    }
    let kept: &'static str = Box::leak(name.into_boxed_str());
    names.insert(path.to_owned(), kept);
    Cow::Borrowed(kept)
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
        assert_eq!(rpc_method("/"), "unknown");
    }
}
