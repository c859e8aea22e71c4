use upload_config::WorkerConfig;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    // Held until main returns: dropping it sends the spans still buffered.
    let _telemetry = upload_telemetry::init(
        &upload_config::TelemetryConfig::from_source(&upload_config::Env)?,
        "upload-worker",
    )?;
    // `upload-worker media-sandbox`: one media run over stdin/stdout, as the media
    // sandbox's socket-activated unit starts it (see `media_sandbox`).
    if std::env::args().nth(1).as_deref() == Some("media-sandbox") {
        let config = upload_config::MediaConfig::from_source(&upload_config::Env)?;
        return upload_worker::media_sandbox::serve(
            config,
            tokio::io::stdin(),
            tokio::io::stdout(),
        )
        .await;
    }
    let config = WorkerConfig::from_env()?;
    tracing::info!(concurrency = config.concurrency, "upload worker starting");
    // SIGTERM (what orchestrators send) or Ctrl-C; without a SIGTERM handler, Ctrl-C only.
    let shutdown = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, "cannot listen for SIGTERM; stop with Ctrl-C");
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    };
    upload_worker::run(config, shutdown).await
}
