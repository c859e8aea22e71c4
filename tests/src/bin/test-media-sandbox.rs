//! The media sandbox's side, as `upload-worker` runs it, for tests that start it
//! as another user: one connection over stdin/stdout (`upload-worker
//! media-sandbox`), or `--listen SOCKET` serving every connection there
//! (`upload-worker media-sandbox-server SOCKET`), until SIGTERM.

#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    let config = upload_config::MediaConfig::from_source(&upload_config::Env)?;
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.as_slice() {
        [flag, socket] if flag == "--listen" => {
            upload_worker::media_sandbox::listen(
                config,
                std::path::Path::new(socket),
                upload_worker::shutdown_signal(),
            )
            .await
        }
        _ => {
            upload_worker::media_sandbox::serve(config, tokio::io::stdin(), tokio::io::stdout())
                .await
        }
    }
}
