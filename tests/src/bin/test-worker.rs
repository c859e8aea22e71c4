//! The worker as its own process, for crash tests that SIGKILL it: the same
//! `upload_worker::run` as the `upload-worker` binary, configured from the
//! environment the test gives it.

use upload_config::WorkerConfig;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let config = WorkerConfig::from_env()?;
    let shutdown = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    upload_worker::run(config, shutdown).await
}
