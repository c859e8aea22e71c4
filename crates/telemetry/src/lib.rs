#![doc = include_str!("../README.md")]
//!
//! Where things live: `buckets` the histogram buckets every duration uses;
//! `listener` the `/metrics` HTTP listener; `logs` the log format; `traces` the
//! OTLP export and the trace context carried across RPCs and jobs.

mod listener;
mod logs;
mod traces;

pub use listener::{MetricsListener, Render};
pub use logs::{BoxedLayer, init_logs, subscriber};
pub use traces::{
    TRACEPARENT, Telemetry, continue_trace, current_traceparent, exporting, init, rpc_method,
    rpc_span,
};

use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};

/// Seconds, from 1 ms to about 65 s, doubling: RPCs, jobs, store and scanner calls.
pub fn seconds_histogram() -> Histogram {
    Histogram::new(exponential_buckets(0.001, 2.0, 17))
}
