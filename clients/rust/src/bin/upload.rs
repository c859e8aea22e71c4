//! `upload`: send a file to the upload service and follow its processing.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use clap::{Parser, Subcommand};
use futures::StreamExt;
use upload_client::{ClientError, SendOptions, UploadClient, pb};

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
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Upload a file, then follow its processing until it is ready.
    Put {
        /// The file to upload.
        file: PathBuf,
        /// Its content type.
        #[arg(long, default_value = "application/octet-stream")]
        content_type: String,
        /// Part size in bytes (the server chooses when omitted).
        #[arg(long)]
        part_size: Option<u64>,
        /// Parts sent at once.
        #[arg(long, default_value_t = 4)]
        concurrency: usize,
    },
    /// Send the parts an interrupted upload still lacks, then complete it.
    Resume {
        /// The upload's id.
        upload_id: String,
        /// The same file.
        file: PathBuf,
        /// Parts sent at once.
        #[arg(long, default_value_t = 4)]
        concurrency: usize,
    },
    /// Show an upload's state and progress.
    Status {
        /// The upload's id.
        upload_id: String,
    },
    /// Abort an unfinished upload.
    Abort {
        /// The upload's id.
        upload_id: String,
    },
}

fn state_name(state: i32) -> String {
    pb::UploadState::try_from(state)
        .map(|s| {
            s.as_str_name()
                .trim_start_matches("UPLOAD_STATE_")
                .to_lowercase()
        })
        .unwrap_or_else(|_| format!("state {state}"))
}

fn stage_line(s: &pb::StageProgress) -> String {
    let stage = pb::Stage::try_from(s.stage)
        .map(|s| s.as_str_name().trim_start_matches("STAGE_").to_lowercase())
        .unwrap_or_default();
    let status = pb::StageStatus::try_from(s.status)
        .map(|s| {
            s.as_str_name()
                .trim_start_matches("STAGE_STATUS_")
                .to_lowercase()
        })
        .unwrap_or_default();
    let pct = (s.bytes_done * 100).checked_div(s.bytes_total).unwrap_or(0);
    format!(
        "{stage:>8} {status:<8} {pct:>3}% ({} / {} bytes)",
        s.bytes_done, s.bytes_total
    )
}

fn stage_short(s: &pb::StageProgress) -> String {
    let stage = pb::Stage::try_from(s.stage)
        .map(|s| s.as_str_name().trim_start_matches("STAGE_").to_lowercase())
        .unwrap_or_default();
    match pb::StageStatus::try_from(s.status) {
        Ok(pb::StageStatus::Skipped) => format!("{stage} skipped"),
        Ok(pb::StageStatus::Pending) => format!("{stage} queued"),
        Ok(pb::StageStatus::Failed) => format!("{stage} FAILED"),
        _ => {
            let pct = (s.bytes_done * 100).checked_div(s.bytes_total).unwrap_or(0);
            format!("{stage} {pct:>3}%")
        }
    }
}

fn print_upload(u: &pb::Upload) {
    println!("upload {} is {}", u.upload_id, state_name(u.state));
    if let Some(m) = &u.metadata {
        println!("  size    {} bytes", m.size_bytes);
        println!("  md5     {}", m.md5_hex);
        println!("  sha256  {}", m.sha256_hex);
        println!("  type    {}", m.sniffed_content_type);
    }
    if let Some(scan) = &u.scan {
        match pb::ScanVerdict::try_from(scan.verdict) {
            Ok(pb::ScanVerdict::Infected) => println!("  scan    INFECTED: {}", scan.signature),
            _ => println!("  scan    clean"),
        }
    }
    if let Some(m) = &u.media {
        println!(
            "  media   {}, {} ms, {}x{}, video {}, audio {}",
            m.container, m.duration_ms, m.width, m.height, m.video_codec, m.audio_codec
        );
    }
    for p in &u.previews {
        println!(
            "  preview {} {}x{} ({} bytes)",
            p.name, p.width, p.height, p.size_bytes
        );
    }
    if let Some(f) = &u.failure {
        println!("  failure {}: {}", f.code, f.message);
    }
}

async fn send(
    client: &UploadClient,
    upload: &pb::Upload,
    file: &std::path::Path,
    concurrency: usize,
    resume: bool,
) -> Result<(), ClientError> {
    let total = upload.size_bytes;
    let done = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let progress = {
        let done = Arc::clone(&done);
        move |part: u32, bytes: u64| {
            let sent = done.fetch_add(bytes, Ordering::Relaxed) + bytes;
            let secs = started.elapsed().as_secs_f64().max(0.001);
            let rate = sent as f64 / secs;
            let eta = if rate > 0.0 {
                (total.saturating_sub(sent)) as f64 / rate
            } else {
                0.0
            };
            eprintln!(
                "  upload part {part:>5}  {:>3}%  {:>7.1} MB/s  eta {eta:>5.1}s",
                sent * 100 / total.max(1),
                rate / 1e6
            );
        }
    };
    let options = SendOptions {
        concurrency,
        ..SendOptions::default()
    };
    let stats = if resume {
        client.resume(upload, file, options, progress).await?
    } else {
        let all: Vec<u32> = (1..=upload.part_count).collect();
        client
            .send_parts(upload, file, &all, options, progress)
            .await?
    };
    eprintln!(
        "sent {} parts ({} bytes) in {:.1}s, {} retries",
        stats.parts_sent,
        stats.bytes_sent,
        started.elapsed().as_secs_f64(),
        stats.retries
    );
    Ok(())
}

async fn complete_and_follow(
    client: &UploadClient,
    upload_id: &str,
) -> Result<pb::Upload, ClientError> {
    client.complete(upload_id).await?;
    let mut stream = client.watch(upload_id).await?;
    let mut last = None;
    while let Some(update) = stream.next().await {
        let update = update?;
        let state = update
            .upload
            .as_ref()
            .map(|u| state_name(u.state))
            .unwrap_or_default();
        let stages: Vec<String> = update.stages.iter().map(stage_short).collect();
        eprintln!("  {state:<11} {}", stages.join("  "));
        last = update.upload;
    }
    last.ok_or_else(|| {
        ClientError::Rpc(tonic::Status::internal(
            "progress stream ended without an update",
        ))
    })
}

async fn run(cli: Cli) -> Result<(), ClientError> {
    let client = UploadClient::connect(&cli.endpoint, &cli.token).await?;
    match cli.command {
        Command::Put {
            file,
            content_type,
            part_size,
            concurrency,
        } => {
            let upload = client.start_file(&file, &content_type, part_size).await?;
            eprintln!(
                "created upload {} ({} bytes in {} parts of {} bytes)",
                upload.upload_id, upload.size_bytes, upload.part_count, upload.part_size_bytes
            );
            send(&client, &upload, &file, concurrency, false).await?;
            print_upload(&complete_and_follow(&client, &upload.upload_id).await?);
        }
        Command::Resume {
            upload_id,
            file,
            concurrency,
        } => {
            let upload = client
                .get(&upload_id)
                .await?
                .upload
                .ok_or_else(|| ClientError::Rpc(tonic::Status::not_found("no such upload")))?;
            send(&client, &upload, &file, concurrency, true).await?;
            print_upload(&complete_and_follow(&client, &upload.upload_id).await?);
        }
        Command::Status { upload_id } => {
            let res = client.get(&upload_id).await?;
            if let Some(u) = &res.upload {
                print_upload(u);
            }
            for s in &res.stages {
                println!("  {}", stage_line(s));
            }
        }
        Command::Abort { upload_id } => {
            let res = client
                .api()
                .abort_upload(pb::AbortUploadRequest { upload_id })
                .await
                .map_err(ClientError::Rpc)?;
            if let Some(u) = &res.into_inner().upload {
                print_upload(u);
            }
        }
    }
    Ok(())
}

#[tokio::main]
async fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    match run(Cli::parse()).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("upload failed: {e}");
            ExitCode::FAILURE
        }
    }
}
