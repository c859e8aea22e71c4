//! `upload`: send files to the upload service, follow their processing, and read an
//! item's versions.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Instant;

use clap::{Parser, Subcommand};
use futures::StreamExt;
use upload_client::{ClientError, Event, PlannedUpload, SendOptions, UploadClient, pb};

mod display;

use display::Display;

#[derive(Parser)]
#[command(version, about = "Upload files to the marketplace's upload service")]
struct Cli {
    /// The server's address.
    #[arg(
        long,
        env = "UPLOAD_ENDPOINT",
        default_value = "http://127.0.0.1:50051"
    )]
    endpoint: String,
    /// Your bearer token.
    #[arg(long, env = "UPLOAD_TOKEN", hide_env_values = true)]
    token: String,
    /// For an https:// endpoint whose certificate a private CA issued: that CA's
    /// certificate (PEM). Without it, the system's root certificates are trusted.
    #[arg(long, env = "UPLOAD_CA_CERT")]
    ca_cert: Option<std::path::PathBuf>,
    /// Print one line per event instead of progress bars (the default when stderr is
    /// not a terminal).
    #[arg(long)]
    plain: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(clap::Args, Clone)]
struct SendArgs {
    /// Parts sent at once.
    #[arg(long, default_value_t = 4)]
    concurrency: usize,
    /// Attempts per part on network errors and 5xx answers.
    #[arg(long, default_value_t = 5)]
    attempts: u32,
    /// Where interrupted uploads are remembered, so `put` or `resume` continues them.
    #[arg(long, env = "UPLOAD_STATE_DIR", default_value_os_t = default_state_dir())]
    state_dir: PathBuf,
    /// Do not follow processing after the upload completes.
    #[arg(long)]
    no_watch: bool,
}

#[derive(Subcommand)]
enum Command {
    /// Upload a file (continuing an interrupted upload of it), then follow its processing.
    Put {
        /// The file to upload.
        file: PathBuf,
        /// Its content type (guessed from the extension when omitted).
        #[arg(long)]
        content_type: Option<String>,
        /// Part size in bytes (the server chooses when omitted).
        #[arg(long)]
        part_size: Option<u64>,
        #[command(flatten)]
        send: SendArgs,
    },
    /// Continue an interrupted upload of a file: only the parts the store lacks are sent.
    Resume {
        /// The same file.
        file: PathBuf,
        /// The upload's id, when no state file was kept (another machine, a lost
        /// state directory): the server's record of stored parts is used.
        #[arg(long)]
        upload_id: Option<String>,
        #[command(flatten)]
        send: SendArgs,
    },
    /// Show an upload's state and the progress of each stage.
    Status {
        /// The upload's id.
        upload_id: String,
    },
    /// Follow an upload's processing until it settles.
    Watch {
        /// The upload's id.
        upload_id: String,
    },
    /// Abort an unfinished upload.
    Abort {
        /// The upload's id.
        upload_id: String,
    },
    /// Show an item: its state, its files and their current versions.
    Item {
        /// The item's id.
        item_id: String,
    },
    /// List an item's versions, newest first.
    Versions {
        /// The item's id.
        item_id: String,
        /// Only this file's versions.
        #[arg(long)]
        file: Option<String>,
    },
    /// Download one version of an item's file and check its MD5.
    Download {
        /// The item's id.
        item_id: String,
        /// The file's id (optional when the item has one file).
        #[arg(long)]
        file: Option<String>,
        /// The version (the current one when omitted).
        #[arg(long)]
        version: Option<u32>,
        /// Where to write it (the seller's file name in the current directory when
        /// omitted).
        #[arg(long, short)]
        output: Option<PathBuf>,
    },
}

fn default_state_dir() -> PathBuf {
    std::env::var_os("XDG_STATE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".local/state")))
        .unwrap_or_else(std::env::temp_dir)
        .join("upload")
}

/// A content type from the file's extension, for the common product files.
fn guess_content_type(file: &Path) -> &'static str {
    let ext = file
        .extension()
        .map(|e| e.to_string_lossy().to_ascii_lowercase())
        .unwrap_or_default();
    match ext.as_str() {
        "mp4" | "m4v" => "video/mp4",
        "mov" => "video/quicktime",
        "webm" => "video/webm",
        "mkv" => "video/x-matroska",
        "mp3" => "audio/mpeg",
        "wav" => "audio/wav",
        "png" => "image/png",
        "jpg" | "jpeg" => "image/jpeg",
        "gif" => "image/gif",
        "webp" => "image/webp",
        "pdf" => "application/pdf",
        "zip" => "application/zip",
        "epub" => "application/epub+zip",
        "txt" => "text/plain",
        _ => "application/octet-stream",
    }
}

fn options(args: &SendArgs) -> SendOptions {
    SendOptions {
        concurrency: args.concurrency,
        attempts: args.attempts,
        ..SendOptions::default()
    }
}

async fn send(
    client: &UploadClient,
    display: &Arc<Display>,
    planned: PlannedUpload,
    args: &SendArgs,
) -> Result<pb::Upload, ClientError> {
    let u = &planned.upload;
    if planned.resumed {
        display.line(&format!(
            "continuing upload {}: the store holds {} of {} parts, {} to send",
            u.upload_id,
            u.part_count as usize - planned.missing.len(),
            u.part_count,
            planned.missing.len()
        ));
    } else {
        display.line(&format!(
            "created upload {} ({} bytes in {} parts of {} bytes)",
            u.upload_id, u.size_bytes, u.part_count, u.part_size_bytes
        ));
    }
    let started = Instant::now();
    display.start_upload(u.size_bytes, planned.bytes_stored());
    let observer = Arc::clone(display);
    let (upload, stats) = client
        .finish(planned, options(args), move |e: &Event| observer.event(e))
        .await?;
    display.finish_upload();
    display.line(&format!(
        "sent {} parts ({} bytes) in {:.1} s, {} retries, {} re-signed; upload {} completed",
        stats.parts_sent,
        stats.bytes_sent,
        started.elapsed().as_secs_f64(),
        stats.retries,
        stats.resigned,
        upload.upload_id
    ));
    Ok(upload)
}

async fn follow(
    client: &UploadClient,
    display: &Display,
    upload_id: &str,
) -> Result<pb::Upload, ClientError> {
    let mut stream = client.watch(upload_id).await?;
    let mut last = None;
    while let Some(update) = stream.next().await {
        let update = update?;
        display.stages(update.upload.as_ref(), &update.stages);
        last = update.upload.or(last);
    }
    display.finish_stages();
    last.ok_or_else(|| ClientError::Upload("the progress stream ended without an update".into()))
}

/// Prints the upload, and fails when processing did not end ready.
fn outcome(upload: &pb::Upload) -> Result<(), ClientError> {
    display::print_upload(upload);
    match pb::UploadState::try_from(upload.state) {
        Ok(pb::UploadState::Ready | pb::UploadState::Submitted | pb::UploadState::Stored) => Ok(()),
        Ok(pb::UploadState::Quarantined) => Err(ClientError::Upload(format!(
            "upload {} is infected and was quarantined",
            upload.upload_id
        ))),
        _ => Err(ClientError::Upload(format!(
            "upload {} ended {}{}",
            upload.upload_id,
            display::state_name(upload.state),
            upload
                .failure
                .as_ref()
                .map(|f| format!(": {}", f.message))
                .unwrap_or_default()
        ))),
    }
}

async fn put_or_resume(
    client: &UploadClient,
    display: &Arc<Display>,
    planned: PlannedUpload,
    args: &SendArgs,
) -> Result<(), ClientError> {
    let upload = send(client, display, planned, args).await?;
    if args.no_watch {
        display::print_upload(&upload);
        return Ok(());
    }
    outcome(&follow(client, display, &upload.upload_id).await?)
}

async fn run(cli: Cli) -> Result<(), ClientError> {
    let plain = cli.plain || !std::io::stderr().is_terminal();
    let display = Arc::new(Display::new(plain));
    let client = match &cli.ca_cert {
        Some(path) => {
            let pem = std::fs::read(path)?;
            UploadClient::connect_trusting(&cli.endpoint, &cli.token, &pem).await?
        }
        None => UploadClient::connect(&cli.endpoint, &cli.token).await?,
    };
    match cli.command {
        Command::Put {
            file,
            content_type,
            part_size,
            send: args,
        } => {
            let content_type = content_type.unwrap_or_else(|| guess_content_type(&file).into());
            let planned = client
                .plan_file(&file, &content_type, part_size, Some(&args.state_dir))
                .await?;
            put_or_resume(&client, &display, planned, &args).await?;
        }
        Command::Resume {
            file,
            upload_id,
            send: args,
        } => {
            let planned = match upload_id {
                Some(id) => client.plan_upload_id(&file, &id).await?,
                None => client.plan_resume(&file, &args.state_dir).await?,
            };
            put_or_resume(&client, &display, planned, &args).await?;
        }
        Command::Status { upload_id } => {
            let res = client.get(&upload_id).await?;
            if let Some(u) = &res.upload {
                display::print_upload(u);
            }
            for s in &res.stages {
                println!("  {}", display::stage_line(s));
            }
        }
        Command::Watch { upload_id } => outcome(&follow(&client, &display, &upload_id).await?)?,
        Command::Abort { upload_id } => {
            let upload = client.abort(&upload_id).await?;
            display::print_upload(&upload);
        }
        Command::Item { item_id } => {
            let item = client
                .items()
                .get_item(pb::GetItemRequest { item_id })
                .await?
                .into_inner()
                .item
                .ok_or_else(|| ClientError::Upload("GetItem returned no item".into()))?;
            display::print_item(&item);
        }
        Command::Versions { item_id, file } => {
            let versions = client
                .items()
                .list_versions(pb::ListVersionsRequest {
                    item_id,
                    file_id: file.unwrap_or_default(),
                })
                .await?
                .into_inner()
                .versions;
            display::print_versions(&versions);
        }
        Command::Download {
            item_id,
            file,
            version,
            output,
        } => download(&client, &display, item_id, file, version, output).await?,
    }
    Ok(())
}

async fn download(
    client: &UploadClient,
    display: &Display,
    item_id: String,
    file: Option<String>,
    version: Option<u32>,
    output: Option<PathBuf>,
) -> Result<(), ClientError> {
    let file_id = match file {
        Some(f) => f,
        None => {
            let item = client
                .items()
                .get_item(pb::GetItemRequest {
                    item_id: item_id.clone(),
                })
                .await?
                .into_inner()
                .item
                .ok_or_else(|| ClientError::Upload("GetItem returned no item".into()))?;
            match item.files.as_slice() {
                [one] => one.file_id.clone(),
                [] => {
                    return Err(ClientError::Upload(format!(
                        "item {item_id} has no files yet"
                    )));
                }
                many => {
                    return Err(ClientError::Upload(format!(
                        "item {item_id} has {} files; name one with --file ({})",
                        many.len(),
                        many.iter()
                            .map(|f| f.file_id.as_str())
                            .collect::<Vec<_>>()
                            .join(", ")
                    )));
                }
            }
        }
    };
    let res = client
        .items()
        .get_download_url(pb::GetDownloadUrlRequest {
            item_id,
            file_id,
            version: version.unwrap_or(0),
        })
        .await?
        .into_inner();
    let v = res
        .version
        .ok_or_else(|| ClientError::Upload("GetDownloadUrl returned no version".into()))?;
    let output = output.unwrap_or_else(|| {
        PathBuf::from(
            Path::new(&v.file_name)
                .file_name()
                .unwrap_or_else(|| std::ffi::OsStr::new("download")),
        )
    });
    let bytes = upload_client::download(client.http(), &res.url, &output, &v.md5_hex, |done| {
        display.download_progress(done, v.size_bytes)
    })
    .await?;
    display.finish_upload();
    println!(
        "downloaded version {} of {} ({bytes} bytes, md5 {} checked) to {}",
        v.version,
        v.file_name,
        v.md5_hex,
        output.display()
    );
    Ok(())
}

#[tokio::main]
async fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "error".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    match run(Cli::parse()).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("upload failed: {}", display::sentence(&e));
            ExitCode::FAILURE
        }
    }
}
