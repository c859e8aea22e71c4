//! The stack's parts and the whole path through them: clamd with the shipped
//! signatures, ffmpeg runs, migrations, the production settings template, a large
//! upload end to end, the browser page, the metrics both services serve, and the
//! traces they export.

mod clamd;
mod ffmpeg_runs;
mod garage_cluster;
mod metrics;
mod migrations;
mod postgres_tls;
mod production_config;
mod traces;
mod upload_flow;
mod web_client;
mod web_page;
