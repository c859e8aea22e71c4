#![doc = include_str!("../README.md")]
//!
//! Where things live: `buckets` the histogram buckets every duration uses;
//! `listener` the `/metrics` HTTP listener; `logs` the log format.

mod listener;
mod logs;

pub use listener::{MetricsListener, Render};
pub use logs::{init_logs, subscriber};

use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};

/// Seconds, from 1 ms to about 65 s, doubling: RPCs, jobs, store and scanner calls.
pub fn seconds_histogram() -> Histogram {
    Histogram::new(exponential_buckets(0.001, 2.0, 17))
}
