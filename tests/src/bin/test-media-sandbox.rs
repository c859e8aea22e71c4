//! The media sandbox's side of one connection over stdin/stdout, as
//! `upload-worker media-sandbox` runs it: the same `upload_worker::media_sandbox::serve`,
//! for tests that start it as another user.

#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    let config = upload_config::MediaConfig::from_source(&upload_config::Env)?;
    upload_worker::media_sandbox::serve(config, tokio::io::stdin(), tokio::io::stdout()).await
}
