#![doc = include_str!("../README.md")]
//!
//! Where things live: `admin` the admin tool as tests run it; `bench` what the benchmarks share; `archives` files built to defeat a scanner; `app` the test app (server, worker, database, buckets, the
//! unfinished-job check at its end); `stack` the stack's environment and database
//! templates; `buckets` a test's own buckets; `faults` a fault-injecting store proxy; `fingerprint` everything
//! the service keeps, to show a call changed nothing; `uploads` clients and uploads;
//! `queries` SQL helpers; `files` test files; `fixtures` clamd, webhooks, media
//! checks; `items` item helpers; `logs` log lines captured for a test; `media_sandbox` the media sandbox behind a socket; `metrics` scrapes of `/metrics`; `otlp` an OTLP collector stand-in; `postgres` a cluster of a test's own; `procfs` CPU and memory read from `/proc` for the benches; `proxy` a misbehaving network;
//! `web` the browser page driven in headless Chromium; `worker_process` the worker as a process of its own, to kill.

mod admin;
mod app;
pub mod archives;
pub mod bench;
mod buckets;
mod faults;
mod files;
mod fingerprint;
mod fixtures;
mod items;
mod logs;
mod media_sandbox;
mod metrics;
mod otlp;
mod postgres;
pub mod procfs;
mod proxy;
mod queries;
mod stack;
mod tls;
mod uploads;
mod web;
mod worker_process;

pub use app::{AppOptions, Running, TestApp};
pub use buckets::TestBuckets;
pub use faults::{Fault, FaultRules, FaultStats, StoreFaults};
pub use files::TestFile;
pub use fingerprint::Fingerprint;
pub use fixtures::*;
pub use items::*;
pub use logs::LogCapture;
pub use media_sandbox::{MediaSandbox, SANDBOX_UID};
pub use metrics::{Scrape, scrape};
pub use otlp::{Collector, ReceivedSpan};
pub use postgres::PrivatePostgres;
pub use procfs::peak_rss_kib;
pub use proxy::{Proxy, ProxyRules, ProxyStats};
pub use stack::{stack_dir, stack_env};
pub use tls::{TestTls, test_tls};
pub use upload_client::pb;
pub use web::{BROWSERS, run_page, run_web_script, screenshot_path, small_parts_app};
pub use worker_process::WorkerProcess;

/// One mebibyte.
pub const MIB: u64 = 1024 * 1024;
/// How long a test waits for background work to settle.
pub const WAIT: std::time::Duration = std::time::Duration::from_secs(60);
pub use uploads::{code, follow, poll_until};
