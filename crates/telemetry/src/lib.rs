#![doc = include_str!("../README.md")]
//!
//! Where things live: `seconds_histogram` (here) the buckets every duration uses;
//! `calls` the counts and durations of calls to the store and clamd; `listener`
//! the `/metrics` HTTP listener; `logs` the log format; `traces` the OTLP export
//! and the trace context carried across RPCs and jobs.

mod calls;
mod listener;
mod logs;
mod traces;

pub use calls::{CallOutcome, Dependency, DependencyCalls};
pub use listener::{MetricsListener, Render};
pub use logs::{BoxedLayer, init_logs, subscriber};
pub use traces::{
    TRACEPARENT, Telemetry, UNKNOWN_RPC, continue_trace, current_traceparent, exporting, init,
    rpc_method, rpc_span,
};

use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};

/// Seconds, from 1 ms to about 65 s, doubling: RPCs, jobs, store and scanner calls.
pub fn seconds_histogram() -> Histogram {
    Histogram::new(exponential_buckets(0.001, 2.0, 17))
}
