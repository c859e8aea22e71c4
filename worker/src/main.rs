use upload_config::WorkerConfig;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let config = WorkerConfig::from_env()?;
    tracing::info!(concurrency = config.concurrency, "upload worker starting");
    upload_worker::run(config, async {
        let _ = tokio::signal::ctrl_c().await;
    })
    .await
}
