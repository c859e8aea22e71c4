//! What the workers read: the scanner, the webhook, the media tools, attempts and
//! delays.

use std::str::FromStr;
use std::time::Duration;

use crate::source::{GIB, MIB, between, parsed, positive, secret};
use crate::{ConfigError, DatabaseConfig, Env, Source, StoreConfig, UploadPolicyConfig};

/// Where the malware scanner listens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClamdAddr {
    /// `host:port`.
    Tcp(String),
    /// A unix socket path (starts with `/`).
    Unix(std::path::PathBuf),
}

impl FromStr for ClamdAddr {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s.starts_with('/') {
            Ok(Self::Unix(s.into()))
        } else if s
            .rsplit_once(':')
            .is_some_and(|(h, p)| !h.is_empty() && p.parse::<u16>().is_ok())
        {
            Ok(Self::Tcp(s.to_owned()))
        } else {
            Err("expected host:port or an absolute unix socket path".into())
        }
    }
}

/// `url` without its query string, which may carry a receiver's token: what logs
/// and errors show of a webhook's URL.
fn without_query(url: &str) -> String {
    match url.split_once('?') {
        Some((base, _)) => format!("{base}?<redacted>"),
        None => url.to_owned(),
    }
}

/// Where the seller notifications are posted, and the key that signs them.
#[derive(Clone)]
pub struct WebhookConfig {
    /// `UPLOAD_WEBHOOK_URL`.
    pub url: String,
    /// `UPLOAD_WEBHOOK_SECRET`: HMAC-SHA256 key, at least 32 bytes.
    pub secret: String,
}

impl std::fmt::Debug for WebhookConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebhookConfig")
            .field("url", &without_query(&self.url))
            .field("secret", &"<redacted>")
            .finish()
    }
}

impl WebhookConfig {
    /// Reads the webhook settings; `None` when no URL is set.
    pub fn from_source(src: &dyn Source) -> Result<Option<Self>, ConfigError> {
        let Some(url) = src.get("UPLOAD_WEBHOOK_URL") else {
            return Ok(None);
        };
        let allow_http: bool = parsed(src, "UPLOAD_WEBHOOK_ALLOW_HTTP", false)?;
        let plain = url.starts_with("http://");
        if !(url.starts_with("https://") || (plain && allow_http)) {
            return Err(ConfigError::Invalid {
                name: "UPLOAD_WEBHOOK_URL",
                value: without_query(&url),
                reason: if plain {
                    "must be an https:// URL: notifications and their signatures would cross the network in the clear (a receiver reached over plain http, such as a test's, needs UPLOAD_WEBHOOK_ALLOW_HTTP=true)".into()
                } else {
                    "must be an https:// URL".into()
                },
            });
        }
        let secret = secret(
            src,
            "UPLOAD_WEBHOOK_SECRET",
            "HMAC key for webhook signatures, needed when UPLOAD_WEBHOOK_URL is set",
        )?;
        if secret.len() < 32 {
            return Err(ConfigError::Invalid {
                name: "UPLOAD_WEBHOOK_SECRET",
                value: "<redacted>".into(),
                reason: "must be at least 32 bytes".into(),
            });
        }
        Ok(Some(Self { url, secret }))
    }
}

/// How previews and media probes run.
#[derive(Debug, Clone)]
pub struct MediaConfig {
    /// `UPLOAD_FFMPEG_PATH` (default `/usr/bin/ffmpeg`).
    pub ffmpeg: std::path::PathBuf,
    /// `UPLOAD_FFPROBE_PATH` (default `/usr/bin/ffprobe`).
    pub ffprobe: std::path::PathBuf,
    /// `UPLOAD_MEDIA_TIMEOUT_SECS`: one ffmpeg or ffprobe run is killed after this (default 300).
    pub timeout: Duration,
    /// `UPLOAD_MEDIA_CONCURRENCY`: ffmpeg/ffprobe processes at once per worker (default 1).
    pub concurrency: usize,
    /// `UPLOAD_THUMBNAIL_SIZES`: longest side of each image thumbnail, in pixels (default `256,1024`).
    pub thumbnail_sizes: Vec<u32>,
    /// `UPLOAD_VIDEO_THUMBNAIL_SIZE`: longest side of a video's thumbnail (default 640).
    pub video_thumbnail_size: u32,
    /// `UPLOAD_CLIP_SECONDS`: length of a video's preview clip (default 6).
    pub clip_seconds: u32,
    /// `UPLOAD_CLIP_HEIGHT`: height of the preview clip in pixels (default 240).
    pub clip_height: u32,
    /// `UPLOAD_MEDIA_MEMORY_BYTES`: address space one ffmpeg or ffprobe process may
    /// take; a file that needs more fails its run (default 2 GiB).
    pub memory_bytes: u64,
    /// `UPLOAD_MEDIA_MAX_PIXELS`: the largest picture (width × height) a decoder
    /// accepts (default 100,000,000: a 10,000 × 10,000 image).
    pub max_pixels: u64,
    /// `UPLOAD_MEDIA_SANDBOX_SOCKET`: the media sandbox's socket; when set, every
    /// ffmpeg and ffprobe run happens there, as the sandbox's own user.
    pub sandbox_socket: Option<std::path::PathBuf>,
    /// `UPLOAD_MEDIA_IN_PROCESS`: without a sandbox, run ffmpeg and ffprobe as the
    /// worker's own children, under its limits alone (local development only: a
    /// crafted file would run beside the store's keys). A worker of the metadata or
    /// preview queue refuses to start with neither (default false).
    pub in_process: bool,
}

impl MediaConfig {
    /// Reads the media settings.
    pub fn from_source(src: &dyn Source) -> Result<Self, ConfigError> {
        let sizes = src
            .get("UPLOAD_THUMBNAIL_SIZES")
            .unwrap_or_else(|| "256,1024".into());
        let thumbnail_sizes = sizes
            .split(',')
            .map(|s| s.trim().parse::<u32>())
            .collect::<Result<Vec<_>, _>>()
            .ok()
            .filter(|v| !v.is_empty() && v.iter().all(|s| (16..=4096).contains(s)))
            .ok_or_else(|| ConfigError::Invalid {
                name: "UPLOAD_THUMBNAIL_SIZES",
                value: sizes.clone(),
                reason: "expected comma-separated pixel sizes between 16 and 4096".into(),
            })?;
        Ok(Self {
            ffmpeg: parsed(src, "UPLOAD_FFMPEG_PATH", "/usr/bin/ffmpeg".into())?,
            ffprobe: parsed(src, "UPLOAD_FFPROBE_PATH", "/usr/bin/ffprobe".into())?,
            timeout: Duration::from_secs(positive(
                "UPLOAD_MEDIA_TIMEOUT_SECS",
                parsed(src, "UPLOAD_MEDIA_TIMEOUT_SECS", 300)?,
            )?),
            concurrency: positive(
                "UPLOAD_MEDIA_CONCURRENCY",
                parsed(src, "UPLOAD_MEDIA_CONCURRENCY", 1u64)?,
            )? as usize,
            thumbnail_sizes,
            video_thumbnail_size: positive(
                "UPLOAD_VIDEO_THUMBNAIL_SIZE",
                parsed(src, "UPLOAD_VIDEO_THUMBNAIL_SIZE", 640)?,
            )? as u32,
            clip_seconds: positive(
                "UPLOAD_CLIP_SECONDS",
                parsed(src, "UPLOAD_CLIP_SECONDS", 6)?,
            )? as u32,
            clip_height: positive(
                "UPLOAD_CLIP_HEIGHT",
                parsed(src, "UPLOAD_CLIP_HEIGHT", 240)?,
            )? as u32,
            memory_bytes: between(
                "UPLOAD_MEDIA_MEMORY_BYTES",
                parsed(src, "UPLOAD_MEDIA_MEMORY_BYTES", 2 * GIB)?,
                256 * MIB,
                64 * GIB,
            )?,
            max_pixels: between(
                "UPLOAD_MEDIA_MAX_PIXELS",
                parsed(src, "UPLOAD_MEDIA_MAX_PIXELS", 100_000_000)?,
                1_000_000,
                1_000_000_000,
            )?,
            sandbox_socket: src
                .get("UPLOAD_MEDIA_SANDBOX_SOCKET")
                .filter(|s| !s.trim().is_empty())
                .map(std::path::PathBuf::from),
            in_process: parsed(src, "UPLOAD_MEDIA_IN_PROCESS", false)?,
        })
    }
}

/// `queues`, unless one of them runs media tools with neither a sandbox nor the
/// development opt-in to run them in the worker's own process.
fn media_queues_sandboxed(
    queues: Vec<crate::QueueRun>,
    src: &dyn Source,
) -> Result<Vec<crate::QueueRun>, ConfigError> {
    use upload_domain::Queue;
    let media = MediaConfig::from_source(src)?;
    let runs_media = queues
        .iter()
        .any(|q| matches!(q.queue, Queue::Metadata | Queue::Preview));
    if runs_media && media.sandbox_socket.is_none() && !media.in_process {
        return Err(ConfigError::Missing {
            name: "UPLOAD_MEDIA_SANDBOX_SOCKET",
            hint: "the media sandbox's socket: ffmpeg and ffprobe parse sellers' files and must not run beside the worker's secrets (UPLOAD_MEDIA_IN_PROCESS=true runs them in the worker, for local development only)",
        });
    }
    Ok(queues)
}

/// Everything the workers need.
#[derive(Debug, Clone)]
pub struct WorkerConfig {
    /// `UPLOAD_METRICS_ADDR`: where Prometheus scrapes `/metrics` (unset: not served).
    pub metrics_addr: Option<std::net::SocketAddr>,
    /// Database settings.
    pub database: DatabaseConfig,
    /// Store settings.
    pub store: StoreConfig,
    /// Upload rules (the type allow-list).
    pub policy: UploadPolicyConfig,
    /// `UPLOAD_CLAMD_ADDR`: the malware scanner (default 127.0.0.1:3310).
    pub clamd: ClamdAddr,
    /// Previews and probes.
    pub media: MediaConfig,
    /// Seller notification webhook, when configured.
    pub webhook: Option<WebhookConfig>,
    /// `UPLOAD_JOB_MAX_ATTEMPTS`: attempts per job before its upload or submission
    /// fails, when the failure is passing (store, scanner or database away). With the
    /// default delays, 12 attempts span about 2.4 hours (default 12).
    pub max_attempts: u32,
    /// `UPLOAD_JOB_RETRY_BASE_SECS`: first retry delay, doubled each attempt (default 5).
    pub retry_base: Duration,
    /// `UPLOAD_JOB_RETRY_MAX_SECS`: the longest delay between two attempts (default 3600).
    pub retry_max: Duration,
    /// `UPLOAD_CLAMD_TIMEOUT_SECS`: how long clamd may take to accept a block of the
    /// stream, or to answer once it has it all, before the scan counts as failed
    /// and is retried (default 180: above clamd's own `MaxScanTime` of 150 s, so a
    /// scan that runs out of time is reported by clamd as such).
    pub clamd_timeout: Duration,
    /// `UPLOAD_ALLOW_ENCRYPTED_ARCHIVES`: accept password-protected archives, whose
    /// insides the scanner cannot read; their verdict is clean and says what was
    /// not inspected (default false: they are rejected as unscannable).
    pub allow_encrypted_archives: bool,
    /// `UPLOAD_RESCAN_BYTES_PER_SEC`: how fast a re-scan of the stored catalogue may
    /// read (default 16777216, 16 MiB/s).
    pub rescan_bytes_per_sec: u64,
    /// `UPLOAD_SIGNATURE_CHECK_SECS`: how often the worker asks clamd for its
    /// signature version, to start a re-scan when it is newer than a stored
    /// verdict's (default 300).
    pub signature_check_interval: Duration,
    /// `UPLOAD_READY_TTL_SECS`: how long a ready upload waits to be submitted before
    /// it expires; shorter than the temp bucket's object expiry (7 days), so a file
    /// never vanishes under a submission (default 432000, 5 days).
    pub ready_ttl: Duration,
    /// `UPLOAD_WORKER_GIVE_UP_SECS`: a queue whose worker keeps failing (its
    /// database gone) for this long ends the process with an error, for its
    /// supervisor to restart it (default 900).
    pub give_up_after: Duration,
    /// `UPLOAD_WORKER_CONCURRENCY`: jobs run at once per queue (default 4).
    pub concurrency: usize,
    /// `UPLOAD_WORKER_QUEUES`: the queues this process runs, each with an optional
    /// count of jobs at once, as `scan:2,metadata,preview:1` (default: every queue,
    /// at `UPLOAD_WORKER_CONCURRENCY`). The sweeper runs everywhere; the signature
    /// watch only beside the scan queue (it asks clamd).
    pub queues: Vec<crate::QueueRun>,
    /// `UPLOAD_SWEEP_INTERVAL_SECS`: how often the sweeper looks for stuck uploads (default 60).
    pub sweep_interval: Duration,
    /// `UPLOAD_STUCK_AFTER_SECS`: processing with no live job this long is stuck (default 900).
    pub stuck_after: Duration,
}

impl WorkerConfig {
    /// Reads the worker's configuration from the process environment.
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_source(&Env)
    }

    /// Reads the worker's configuration from `src`.
    pub fn from_source(src: &dyn Source) -> Result<Self, ConfigError> {
        let concurrency = positive(
            "UPLOAD_WORKER_CONCURRENCY",
            parsed(src, "UPLOAD_WORKER_CONCURRENCY", 4u64)?,
        )? as usize;
        Ok(Self {
            metrics_addr: crate::source::optional(src, "UPLOAD_METRICS_ADDR")?,
            database: DatabaseConfig::from_source(src)?,
            store: StoreConfig::from_source(src)?,
            policy: UploadPolicyConfig::from_source(src)?,
            clamd: parsed(
                src,
                "UPLOAD_CLAMD_ADDR",
                ClamdAddr::Tcp("127.0.0.1:3310".into()),
            )?,
            media: MediaConfig::from_source(src)?,
            webhook: WebhookConfig::from_source(src)?,
            max_attempts: positive(
                "UPLOAD_JOB_MAX_ATTEMPTS",
                parsed(src, "UPLOAD_JOB_MAX_ATTEMPTS", 12u64)?,
            )? as u32,
            retry_base: Duration::from_secs(parsed(src, "UPLOAD_JOB_RETRY_BASE_SECS", 5)?),
            retry_max: Duration::from_secs(positive(
                "UPLOAD_JOB_RETRY_MAX_SECS",
                parsed(src, "UPLOAD_JOB_RETRY_MAX_SECS", 3600)?,
            )?),
            clamd_timeout: Duration::from_secs(positive(
                "UPLOAD_CLAMD_TIMEOUT_SECS",
                parsed(src, "UPLOAD_CLAMD_TIMEOUT_SECS", 180)?,
            )?),
            allow_encrypted_archives: parsed(src, "UPLOAD_ALLOW_ENCRYPTED_ARCHIVES", false)?,
            rescan_bytes_per_sec: positive(
                "UPLOAD_RESCAN_BYTES_PER_SEC",
                parsed(src, "UPLOAD_RESCAN_BYTES_PER_SEC", 16 * 1024 * 1024)?,
            )?,
            signature_check_interval: Duration::from_secs(positive(
                "UPLOAD_SIGNATURE_CHECK_SECS",
                parsed(src, "UPLOAD_SIGNATURE_CHECK_SECS", 300)?,
            )?),
            ready_ttl: Duration::from_secs(between(
                "UPLOAD_READY_TTL_SECS",
                parsed(src, "UPLOAD_READY_TTL_SECS", 5 * 86_400)?,
                1,
                6 * 86_400,
            )?),
            give_up_after: Duration::from_secs(positive(
                "UPLOAD_WORKER_GIVE_UP_SECS",
                parsed(src, "UPLOAD_WORKER_GIVE_UP_SECS", 900)?,
            )?),
            concurrency,
            queues: media_queues_sandboxed(
                crate::queues::parse(src.get("UPLOAD_WORKER_QUEUES").as_deref(), concurrency)?,
                src,
            )?,
            sweep_interval: Duration::from_secs(positive(
                "UPLOAD_SWEEP_INTERVAL_SECS",
                parsed(src, "UPLOAD_SWEEP_INTERVAL_SECS", 60)?,
            )?),
            stuck_after: Duration::from_secs(parsed(src, "UPLOAD_STUCK_AFTER_SECS", 900)?),
        })
    }
}
