//! What the CLI shows: progress bars on a terminal, one line per event otherwise.

use std::collections::BTreeMap;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use upload_client::{ClientError, Event, pb};

/// Progress for one command.
pub struct Display {
    plain: bool,
    multi: MultiProgress,
    upload: Mutex<Option<ProgressBar>>,
    stages: Mutex<BTreeMap<i32, ProgressBar>>,
    plain_progress: Mutex<Plain>,
}

struct Plain {
    sent: u64,
    total: u64,
    started: Instant,
    last_stages: String,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

fn bar_style(template: &str) -> ProgressStyle {
    ProgressStyle::with_template(template)
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> ")
}

impl Display {
    pub fn new(plain: bool) -> Self {
        let multi = if plain {
            MultiProgress::with_draw_target(ProgressDrawTarget::hidden())
        } else {
            MultiProgress::with_draw_target(ProgressDrawTarget::stderr())
        };
        Self {
            plain,
            multi,
            upload: Mutex::new(None),
            stages: Mutex::new(BTreeMap::new()),
            plain_progress: Mutex::new(Plain {
                sent: 0,
                total: 0,
                started: Instant::now(),
                last_stages: String::new(),
            }),
        }
    }

    /// A line of text above the bars.
    pub fn line(&self, text: &str) {
        if self.plain {
            eprintln!("{text}");
        } else {
            let _ = self.multi.println(text);
        }
    }

    pub fn start_upload(&self, total: u64, already: u64) {
        let mut p = lock(&self.plain_progress);
        p.sent = already;
        p.total = total;
        p.started = Instant::now();
        if !self.plain {
            let bar = self.multi.add(ProgressBar::new(total));
            bar.set_style(bar_style(
                "{prefix:>9} [{bar:40}] {bytes}/{total_bytes} {binary_bytes_per_sec} eta {eta}",
            ));
            bar.set_prefix("upload");
            bar.set_position(already);
            bar.reset_eta();
            *lock(&self.upload) = Some(bar);
        }
    }

    pub fn event(&self, event: &Event) {
        match event {
            Event::PartSent { part, bytes } => {
                if let Some(bar) = &*lock(&self.upload) {
                    bar.inc(*bytes);
                }
                let mut p = lock(&self.plain_progress);
                p.sent += bytes;
                if self.plain {
                    let secs = p.started.elapsed().as_secs_f64().max(0.001);
                    let rate = p.sent.min(p.total) as f64 / secs;
                    let eta = p.total.saturating_sub(p.sent) as f64 / rate.max(1.0);
                    eprintln!(
                        "  upload part {part:>5}  {:>3}%  {:>7.1} MB/s  eta {eta:>5.1} s",
                        p.sent * 100 / p.total.max(1),
                        rate / 1e6
                    );
                }
            }
            Event::Retrying {
                part,
                attempt,
                delay,
                error,
            } => self.line(&format!(
                "  retrying part {part} (attempt {attempt}) in {:.2} s: {error}",
                delay.as_secs_f64()
            )),
            Event::Resigned { part, reason } => {
                tracing::info!(part, reason, "part signed again");
            }
        }
    }

    pub fn download_progress(&self, done: u64, total: u64) {
        let mut upload = lock(&self.upload);
        if self.plain {
            return;
        }
        let bar = upload.get_or_insert_with(|| {
            let bar = self.multi.add(ProgressBar::new(total));
            bar.set_style(bar_style(
                "{prefix:>9} [{bar:40}] {bytes}/{total_bytes} {binary_bytes_per_sec} eta {eta}",
            ));
            bar.set_prefix("download");
            bar
        });
        bar.set_position(done);
    }

    pub fn finish_upload(&self) {
        if let Some(bar) = lock(&self.upload).take() {
            bar.finish();
        }
    }

    /// One bar per processing stage, or one line per change.
    pub fn stages(&self, upload: Option<&pb::Upload>, stages: &[pb::StageProgress]) {
        let state = upload.map(|u| state_name(u.state)).unwrap_or_default();
        if self.plain {
            let line: Vec<String> = stages.iter().map(stage_short).collect();
            let line = format!("  {state:<11} {}", line.join("  "));
            let mut p = lock(&self.plain_progress);
            if line != p.last_stages {
                eprintln!("{line}");
                p.last_stages = line;
            }
            return;
        }
        let mut bars = lock(&self.stages);
        for s in stages {
            let bar = bars.entry(s.stage).or_insert_with(|| {
                let bar = self.multi.add(ProgressBar::new(s.bytes_total.max(1)));
                bar.set_style(bar_style(
                    "{prefix:>9} [{bar:40}] {bytes}/{total_bytes} {msg}",
                ));
                bar.set_prefix(stage_name(s.stage));
                bar.enable_steady_tick(Duration::from_millis(200));
                bar
            });
            bar.set_length(s.bytes_total.max(1));
            bar.set_position(s.bytes_done);
            bar.set_message(status_name(s.status));
            if matches!(
                pb::StageStatus::try_from(s.status),
                Ok(pb::StageStatus::Done | pb::StageStatus::Skipped | pb::StageStatus::Failed)
            ) && !bar.is_finished()
            {
                if s.status == pb::StageStatus::Done as i32 {
                    bar.set_position(s.bytes_total.max(1));
                }
                bar.finish();
            }
        }
    }

    pub fn finish_stages(&self) {
        for bar in lock(&self.stages).values() {
            if !bar.is_finished() {
                bar.abandon();
            }
        }
    }
}

fn trimmed(name: &str, prefix: &str) -> String {
    name.trim_start_matches(prefix).to_lowercase()
}

pub fn state_name(state: i32) -> String {
    pb::UploadState::try_from(state)
        .map(|s| trimmed(s.as_str_name(), "UPLOAD_STATE_"))
        .unwrap_or_else(|_| format!("state {state}"))
}

fn stage_name(stage: i32) -> String {
    pb::Stage::try_from(stage)
        .map(|s| trimmed(s.as_str_name(), "STAGE_"))
        .unwrap_or_default()
}

fn status_name(status: i32) -> String {
    pb::StageStatus::try_from(status)
        .map(|s| trimmed(s.as_str_name(), "STAGE_STATUS_"))
        .unwrap_or_default()
}

pub fn stage_line(s: &pb::StageProgress) -> String {
    let pct = (s.bytes_done * 100).checked_div(s.bytes_total).unwrap_or(0);
    format!(
        "{:>8} {:<8} {pct:>3}% ({} / {} bytes)",
        stage_name(s.stage),
        status_name(s.status),
        s.bytes_done,
        s.bytes_total
    )
}

fn stage_short(s: &pb::StageProgress) -> String {
    let stage = stage_name(s.stage);
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

pub fn print_upload(u: &pb::Upload) {
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

fn submission_name(state: i32) -> String {
    pb::SubmissionState::try_from(state)
        .map(|s| trimmed(s.as_str_name(), "SUBMISSION_STATE_"))
        .unwrap_or_else(|_| format!("state {state}"))
}

pub fn print_item(item: &pb::Item) {
    println!(
        "item {} ({}) is {}",
        item.item_id,
        pb::ItemKind::try_from(item.kind)
            .map(|k| trimmed(k.as_str_name(), "ITEM_KIND_"))
            .unwrap_or_default(),
        submission_name(item.state)
    );
    if !item.title.is_empty() {
        println!("  title   {}", item.title);
    }
    if let Some(f) = &item.failure {
        println!("  failure {}: {}", f.code, f.message);
    }
    for f in &item.files {
        match &f.current {
            Some(v) => println!(
                "  file {}: {} versions, current v{} {} ({} bytes, md5 {})",
                f.file_id, f.version_count, v.version, v.file_name, v.size_bytes, v.md5_hex
            ),
            None => println!("  file {}: no version stored yet", f.file_id),
        }
    }
}

pub fn print_versions(versions: &[pb::FileVersion]) {
    if versions.is_empty() {
        println!("no versions stored yet");
        return;
    }
    println!(
        "{:<36}  {:>7}  {:>12}  {:<32}  {:<20}  name",
        "file", "version", "bytes", "md5", "stored at"
    );
    for v in versions {
        let at = v
            .created_at
            .as_ref()
            .map(|t| t.seconds.to_string())
            .unwrap_or_default();
        println!(
            "{:<36}  {:>6}{}  {:>12}  {:<32}  {:<20}  {}",
            v.file_id,
            v.version,
            if v.current { "*" } else { " " },
            v.size_bytes,
            v.md5_hex,
            at,
            v.file_name
        );
    }
}

/// An error as a sentence a person can act on.
pub fn sentence(e: &ClientError) -> String {
    let ClientError::Rpc(status) = e else {
        return e.to_string();
    };
    let message = status.message();
    match status.code() {
        tonic::Code::Unauthenticated => {
            format!("the server did not accept your token ({message}); check UPLOAD_TOKEN")
        }
        tonic::Code::Unavailable => format!("the upload server is not reachable: {message}"),
        tonic::Code::NotFound => format!("{message} (or it is not yours)"),
        tonic::Code::ResourceExhausted => format!("too large: {message}"),
        _ => message.to_owned(),
    }
}
