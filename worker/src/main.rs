use upload_config::WorkerConfig;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut telemetry = upload_config::TelemetryConfig::from_source(&upload_config::Env)?;
    if !args.is_empty() {
        // The media sandbox exports nothing: it has no network but the store's.
        telemetry.otlp_endpoint = None;
    }
    // Held until main returns: dropping it sends the spans still buffered.
    let _telemetry = upload_telemetry::init(&telemetry, "upload-worker")?;
    // `upload-worker media-sandbox`: one media run over stdin/stdout, as the media
    // sandbox's socket-activated unit starts it; `upload-worker media-sandbox-server
    // SOCKET`: the sandbox as a container of its own, serving runs on SOCKET (see
    // `media_sandbox`).
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args
        .iter()
        .map(String::as_str)
        .collect::<Vec<_>>()
        .as_slice()
    {
        ["media-sandbox"] => {
            let config = upload_config::MediaConfig::from_source(&upload_config::Env)?;
            return upload_worker::media_sandbox::serve(
                config,
                tokio::io::stdin(),
                tokio::io::stdout(),
            )
            .await;
        }
        ["media-sandbox-server", socket] => {
            let config = upload_config::MediaConfig::from_source(&upload_config::Env)?;
            return upload_worker::media_sandbox::listen(
                config,
                std::path::Path::new(socket),
                upload_worker::shutdown_signal(),
            )
            .await;
        }
        [] => {}
        other => anyhow::bail!(
            "unknown arguments {other:?}: upload-worker takes none, or media-sandbox, or media-sandbox-server SOCKET"
        ),
    }
    let config = WorkerConfig::from_env()?;
    tracing::info!(concurrency = config.concurrency, "upload worker starting");
    upload_worker::run(config, upload_worker::shutdown_signal()).await
}
