//! ffmpeg and ffprobe, run as child processes: each run holds a permit of a
//! per-worker limit, is killed when its time runs out or when the job that started
//! it is dropped, and is judged by its exit status. With a media sandbox configured
//! (`UPLOAD_MEDIA_SANDBOX_SOCKET`) every run happens there instead, as another
//! user (see `media_sandbox`); otherwise here, with an empty environment and an
//! address-space limit.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use ffmpeg_sidecar::command::FfmpegCommand;
use ffmpeg_sidecar::event::{FfmpegEvent, LogLevel};
use serde::Deserialize;
use tokio::sync::Semaphore;
use upload_config::MediaConfig;

/// Protocols a store input (a presigned URL) may use; a crafted file cannot make
/// ffmpeg open local files or anything but HTTP (`concat:`, `subfile:`, `data:`).
const NETWORK_PROTOCOLS: &str = "http,https,tcp,tls";
/// How a store input is read: a dropped connection, a 5xx answer or a read silent
/// for 30 s is retried from where it broke off, for up to 4 s between tries.
const NETWORK_INPUT: [&str; 10] = [
    "-reconnect",
    "1",
    "-reconnect_on_network_error",
    "1",
    "-reconnect_on_http_error",
    "5xx",
    "-reconnect_delay_max",
    "4",
    "-rw_timeout",
    "30000000",
];
/// Protocols a local input (a preview we made) may use.
const LOCAL_PROTOCOLS: &str = "file";

/// The protocol whitelist for `input`: network for URLs, local files otherwise.
fn protocols(input: &str) -> &'static str {
    if input.starts_with("http://") || input.starts_with("https://") {
        NETWORK_PROTOCOLS
    } else {
        LOCAL_PROTOCOLS
    }
}

/// Why a media run failed.
#[derive(Debug, thiserror::Error)]
pub enum MediaError {
    /// The tool could not be started or its output read.
    #[error("{tool} could not run: {source:#}")]
    Spawn {
        /// `ffmpeg` or `ffprobe`.
        tool: &'static str,
        /// The cause.
        source: anyhow::Error,
    },
    /// The run took longer than allowed and was killed.
    #[error("{tool} did not finish within {limit:?} and was stopped")]
    Timeout {
        /// `ffmpeg` or `ffprobe`.
        tool: &'static str,
        /// The limit.
        limit: Duration,
    },
    /// The tool exited with an error.
    #[error("{tool} failed ({status}): {message}")]
    Failed {
        /// `ffmpeg` or `ffprobe`.
        tool: &'static str,
        /// Exit status.
        status: String,
        /// Its last error lines.
        message: String,
    },
    /// ffprobe's report could not be understood.
    #[error("ffprobe's report could not be read: {0}")]
    Report(String),
    /// The media sandbox did not take the connection (not started yet, or
    /// restarting): the file has nothing to do with it.
    #[error("cannot reach the media sandbox at {0}")]
    Unreachable(String),
}

/// Wraps any start-up or plumbing error of `tool` as [`MediaError::Spawn`].
fn spawn_error<E: Into<anyhow::Error>>(tool: &'static str) -> impl FnOnce(E) -> MediaError {
    move |e| MediaError::Spawn {
        tool,
        source: e.into(),
    }
}

/// Runs ffmpeg and ffprobe under a concurrency limit and a time limit.
#[derive(Clone)]
pub struct Media {
    config: MediaConfig,
    permits: Arc<Semaphore>,
    /// The media sandbox's socket, when runs happen there.
    sandbox: Option<PathBuf>,
}

/// Kills a child process when dropped before it was reaped.
struct KillOnDrop(Option<ffmpeg_sidecar::child::FfmpegChild>);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        if let Some(mut child) = self.0.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Media {
    /// A runner with `config`'s paths and limits.
    pub fn new(config: MediaConfig) -> Self {
        let permits = Arc::new(Semaphore::new(config.concurrency));
        let sandbox = config.sandbox_socket.clone();
        Self {
            config,
            permits,
            sandbox,
        }
    }

    /// The settings.
    pub fn config(&self) -> &MediaConfig {
        &self.config
    }

    /// Runs ffmpeg with `args` (input, filters, outputs in `dir`). Succeeds when
    /// ffmpeg exits 0; its outputs are then in `dir`.
    pub async fn ffmpeg(&self, dir: &Path, args: &[String]) -> Result<(), MediaError> {
        let _permit = self
            .permits
            .acquire()
            .await
            .map_err(spawn_error("ffmpeg"))?;
        match &self.sandbox {
            Some(socket) => crate::media_sandbox::ffmpeg(socket, &self.config, dir, args).await,
            None => self.ffmpeg_here(dir, args).await,
        }
    }

    /// Probes `input` (a URL or a path) with ffprobe, reading it with the demuxers
    /// `formats` alone (see [`upload_domain::demuxers`]), and parses its report.
    pub async fn probe(&self, input: &str, formats: &str) -> Result<ProbeReport, MediaError> {
        let _permit = self
            .permits
            .acquire()
            .await
            .map_err(spawn_error("ffprobe"))?;
        let json = match &self.sandbox {
            Some(socket) => {
                crate::media_sandbox::probe(socket, &self.config, input, formats).await?
            }
            None => self.probe_here(input, formats, None).await?,
        };
        ProbeReport::parse(&json)
    }

    /// Runs ffmpeg in this process's sandbox (empty environment, memory cap), in `dir`.
    pub(crate) async fn ffmpeg_here(&self, dir: &Path, args: &[String]) -> Result<(), MediaError> {
        const TOOL: &str = "ffmpeg";
        // Through prlimit, which caps the address space and then runs ffmpeg: a
        // crafted file cannot take the host's memory.
        let mut inner = std::process::Command::new(PRLIMIT);
        self.limits(&mut inner, &self.config.ffmpeg);
        inner
            .current_dir(dir)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped());
        let mut command = FfmpegCommand::from(inner);
        // Global options first: ffmpeg ignores options after the last output. The
        // log level is the one ffmpeg-sidecar's event parser expects.
        command
            .args(["-loglevel", "level+info"])
            .hide_banner()
            .overwrite()
            .args(args);
        let mut child = command.spawn().map_err(spawn_error(TOOL))?;
        let events = child.iter();
        // From here on the process dies with this future, whatever happens to it.
        let mut guard = KillOnDrop(Some(child));
        let mut events = events.map_err(|source| MediaError::Spawn { tool: TOOL, source })?;
        // The events end when ffmpeg closes its stderr, that is when it exits.
        let errors = tokio::task::spawn_blocking(move || {
            // Only the last lines are kept: a broken file can make ffmpeg complain
            // once per frame.
            let mut first = None;
            let mut errors = std::collections::VecDeque::with_capacity(ERROR_LINES);
            for event in events.by_ref() {
                match event {
                    // ffmpeg-sidecar reports "No streams found" on every run; it means nothing.
                    FfmpegEvent::Log(LogLevel::Error | LogLevel::Fatal, line)
                    | FfmpegEvent::Error(line)
                        if !line.contains("No streams found") =>
                    {
                        if first.is_none() {
                            first = Some(line);
                            continue;
                        }
                        if errors.len() == ERROR_LINES {
                            errors.pop_front();
                        }
                        errors.push_back(line);
                    }
                    _ => {}
                }
            }
            first.into_iter().chain(errors).collect::<Vec<_>>()
        });
        let limit = self.config.timeout;
        let errors = match tokio::time::timeout(limit, errors).await {
            Ok(joined) => joined.map_err(spawn_error(TOOL))?,
            Err(_) => return Err(MediaError::Timeout { tool: TOOL, limit }),
        };
        let mut process = guard.0.take().ok_or_else(|| MediaError::Spawn {
            tool: TOOL,
            source: anyhow::anyhow!("process handle lost"),
        })?;
        let status = tokio::task::spawn_blocking(move || process.wait())
            .await
            .map_err(spawn_error(TOOL))?
            .map_err(spawn_error(TOOL))?;
        if status.success() {
            Ok(())
        } else {
            Err(MediaError::Failed {
                tool: TOOL,
                status: status.to_string(),
                message: last_lines(&errors),
            })
        }
    }

    /// Runs ffprobe on `input` here (empty environment, memory cap, the demuxers
    /// `formats` alone), in `dir` when given; returns its JSON report.
    pub(crate) async fn probe_here(
        &self,
        input: &str,
        formats: &str,
        dir: Option<&Path>,
    ) -> Result<Vec<u8>, MediaError> {
        const TOOL: &str = "ffprobe";
        let mut command = std::process::Command::new(PRLIMIT);
        self.limits(&mut command, &self.config.ffprobe);
        if let Some(dir) = dir {
            command.current_dir(dir);
        }
        let child = tokio::process::Command::from(command)
            .args(["-v", "error", "-protocol_whitelist", protocols(input)])
            .args(["-max_pixels", &self.config.max_pixels.to_string()])
            .args(["-format_whitelist", formats])
            .args(if protocols(input) == NETWORK_PROTOCOLS {
                &NETWORK_INPUT[..]
            } else {
                &[]
            })
            .args(["-print_format", "json", "-show_format", "-show_streams"])
            .arg(input)
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .map_err(spawn_error(TOOL))?;
        let limit = self.config.timeout;
        let output = tokio::time::timeout(limit, child.wait_with_output())
            .await
            .map_err(|_| MediaError::Timeout { tool: TOOL, limit })?
            .map_err(spawn_error(TOOL))?;
        if !output.status.success() {
            let stderr = String::from_utf8_lossy(&output.stderr);
            return Err(MediaError::Failed {
                tool: TOOL,
                status: output.status.to_string(),
                message: last_lines(&stderr.lines().map(str::to_owned).collect::<Vec<_>>()),
            });
        }
        Ok(output.stdout)
    }

    /// The input arguments for a store URL or a local path: only the protocols a
    /// reader of our own objects needs, only the demuxers `formats` of the type its
    /// bytes sniffed as, and no picture larger than the limit.
    pub fn input_args(&self, input: &str, formats: &str) -> Vec<String> {
        let mut args: Vec<String> = vec![
            "-max_pixels".into(),
            self.config.max_pixels.to_string(),
            "-protocol_whitelist".into(),
            protocols(input).into(),
            "-format_whitelist".into(),
            formats.into(),
        ];
        if protocols(input) == NETWORK_PROTOCOLS {
            args.extend(NETWORK_INPUT.iter().map(|a| (*a).to_owned()));
        }
        args.extend(["-i".into(), input.into()]);
        args
    }

    /// Makes `command` (prlimit) run `tool` with an address-space limit and an empty
    /// environment: the files it parses come from strangers, and the worker's
    /// environment holds the store's keys and the database's address.
    fn limits(&self, command: &mut std::process::Command, tool: &Path) {
        command
            .env_clear()
            .arg(format!("--as={}", self.config.memory_bytes))
            .arg("--")
            .arg(tool);
    }
}

/// Runs a program under resource limits (util-linux).
const PRLIMIT: &str = "/usr/bin/prlimit";
/// Error lines of an ffmpeg run kept for its failure message.
const ERROR_LINES: usize = 16;

/// The first error line (usually the cause) and the last two (where it ended).
fn last_lines(lines: &[String]) -> String {
    let mut shown: Vec<&str> = lines.first().map(String::as_str).into_iter().collect();
    let tail = lines.len().saturating_sub(2).max(1);
    shown.extend(lines.iter().skip(tail).map(String::as_str));
    if shown.is_empty() {
        "no error output".into()
    } else {
        shown.join(" / ")
    }
}

/// The facts about a media file, typed.
#[derive(Debug, Clone, PartialEq)]
pub struct ProbeReport {
    /// Container format names, as ffprobe gives them.
    pub container: String,
    /// Duration in milliseconds.
    pub duration_ms: Option<u64>,
    /// Overall bit rate, bits per second.
    pub bit_rate: Option<u64>,
    /// First real video stream (not cover art): width.
    pub width: Option<u32>,
    /// ... height.
    pub height: Option<u32>,
    /// ... codec.
    pub video_codec: Option<String>,
    /// ... frames per second.
    pub frame_rate: Option<f64>,
    /// First audio stream's codec.
    pub audio_codec: Option<String>,
}

#[derive(Deserialize)]
struct RawReport {
    #[serde(default)]
    streams: Vec<RawStream>,
    format: Option<RawFormat>,
}

#[derive(Deserialize)]
struct RawFormat {
    format_name: Option<String>,
    duration: Option<String>,
    bit_rate: Option<String>,
}

#[derive(Deserialize)]
struct RawStream {
    codec_type: Option<String>,
    codec_name: Option<String>,
    width: Option<u32>,
    height: Option<u32>,
    avg_frame_rate: Option<String>,
    r_frame_rate: Option<String>,
    duration: Option<String>,
    #[serde(default)]
    disposition: RawDisposition,
}

#[derive(Deserialize, Default)]
struct RawDisposition {
    #[serde(default)]
    attached_pic: u8,
}

/// `"30000/1001"` → 29.97; `"0/0"` and nonsense → `None`.
fn rate(text: Option<&str>) -> Option<f64> {
    let (n, d) = text?.split_once('/')?;
    let (n, d) = (n.parse::<f64>().ok()?, d.parse::<f64>().ok()?);
    (n > 0.0 && d > 0.0).then(|| (n / d * 1000.0).round() / 1000.0)
}

/// `"4.021333"` seconds → 4021 ms.
fn millis(text: Option<&str>) -> Option<u64> {
    let secs: f64 = text?.parse().ok()?;
    (secs.is_finite() && secs >= 0.0).then(|| (secs * 1000.0).round() as u64)
}

impl ProbeReport {
    /// Parses `ffprobe -print_format json -show_format -show_streams` output.
    pub fn parse(json: &[u8]) -> Result<Self, MediaError> {
        let raw: RawReport =
            serde_json::from_slice(json).map_err(|e| MediaError::Report(e.to_string()))?;
        let format = raw
            .format
            .ok_or_else(|| MediaError::Report("no format section".into()))?;
        let video = raw
            .streams
            .iter()
            .find(|s| s.codec_type.as_deref() == Some("video") && s.disposition.attached_pic == 0);
        let audio = raw
            .streams
            .iter()
            .find(|s| s.codec_type.as_deref() == Some("audio"));
        let duration_ms = millis(format.duration.as_deref())
            .or_else(|| video.and_then(|v| millis(v.duration.as_deref())));
        Ok(Self {
            container: format
                .format_name
                .ok_or_else(|| MediaError::Report("no format name".into()))?,
            duration_ms,
            bit_rate: format.bit_rate.as_deref().and_then(|b| b.parse().ok()),
            width: video.and_then(|v| v.width),
            height: video.and_then(|v| v.height),
            video_codec: video.and_then(|v| v.codec_name.clone()),
            frame_rate: video.and_then(|v| {
                rate(v.avg_frame_rate.as_deref()).or_else(|| rate(v.r_frame_rate.as_deref()))
            }),
            audio_codec: audio.and_then(|a| a.codec_name.clone()),
        })
    }
}

/// Reads a local file's report (for previews we made, of `formats`): dimensions
/// at least.
pub async fn dimensions(
    media: &Media,
    path: &Path,
    formats: &str,
) -> Result<(u32, u32), MediaError> {
    let report = media.probe(&path.to_string_lossy(), formats).await?;
    match (report.width, report.height) {
        (Some(w), Some(h)) => Ok((w, h)),
        _ => Err(MediaError::Report(format!(
            "{} has no picture",
            path.file_name()
                .map(|n| n.to_string_lossy())
                .unwrap_or_default()
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_video_with_sound_is_read_field_by_field() {
        let r =
            ProbeReport::parse(include_bytes!("../testdata/ffprobe/video_h264_aac.json")).unwrap();
        assert!(r.container.contains("mp4"), "{}", r.container);
        assert_eq!(r.duration_ms, Some(3000));
        assert_eq!((r.width, r.height), (Some(320), Some(240)));
        assert_eq!(r.video_codec.as_deref(), Some("h264"));
        assert_eq!(r.audio_codec.as_deref(), Some("aac"));
        assert_eq!(r.frame_rate, Some(25.0));
        assert!(r.bit_rate.is_some_and(|b| b > 0));
    }

    #[test]
    fn an_image_has_dimensions_and_no_duration_to_speak_of() {
        let r = ProbeReport::parse(include_bytes!("../testdata/ffprobe/image_png.json")).unwrap();
        assert_eq!((r.width, r.height), (Some(640), Some(480)));
        assert_eq!(r.video_codec.as_deref(), Some("png"));
        assert_eq!(r.audio_codec, None);
    }

    #[test]
    fn cover_art_is_not_taken_for_video() {
        let r =
            ProbeReport::parse(include_bytes!("../testdata/ffprobe/audio_mp3_cover.json")).unwrap();
        assert_eq!(r.audio_codec.as_deref(), Some("mp3"));
        assert_eq!(r.video_codec, None);
        assert_eq!(r.width, None);
        assert_eq!(r.duration_ms.map(|d| d / 1000), Some(2));
    }

    #[test]
    fn store_inputs_cannot_reach_local_files_and_local_inputs_cannot_reach_the_network() {
        assert_eq!(
            protocols("http://127.0.0.1:3900/temp/x?X-Amz-Signature=1"),
            "http,https,tcp,tls"
        );
        assert_eq!(protocols("/tmp/upload-preview-1/poster.jpg"), "file");
        let media = Media::new(
            upload_config::MediaConfig::from_source(
                &std::collections::HashMap::<String, String>::new(),
            )
            .unwrap(),
        );
        let args = media.input_args("/tmp/a.jpg", "jpeg_pipe,image2");
        assert_eq!(args[3], "file");
        assert_eq!(&args[..2], ["-max_pixels", "100000000"]);
        assert_eq!(&args[4..6], ["-format_whitelist", "jpeg_pipe,image2"]);
    }

    #[test]
    fn garbage_is_an_error_not_a_default() {
        assert!(ProbeReport::parse(b"{}").is_err());
        assert!(ProbeReport::parse(b"not json").is_err());
    }

    #[test]
    fn rates_and_durations_parse_defensively() {
        assert_eq!(rate(Some("30000/1001")), Some(29.97));
        assert_eq!(rate(Some("0/0")), None);
        assert_eq!(rate(Some("25")), None);
        assert_eq!(millis(Some("4.0216")), Some(4022));
        assert_eq!(millis(Some("N/A")), None);
    }
}
