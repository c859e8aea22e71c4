//! Configuration read from the environment. Every error names the variable at fault,
//! so an operator knows what to fix without reading the code.

use std::net::SocketAddr;
use std::str::FromStr;
use std::time::Duration;

pub use upload_domain::TypePolicy;

/// A configuration problem, naming the environment variable.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// A required variable is not set.
    #[error("environment variable {name} is not set ({hint})")]
    Missing {
        /// The variable's name.
        name: &'static str,
        /// What the variable is for.
        hint: &'static str,
    },
    /// A variable is set but cannot be parsed.
    #[error("environment variable {name}={value:?} is invalid: {reason}")]
    Invalid {
        /// The variable's name.
        name: &'static str,
        /// The value found.
        value: String,
        /// Why it was refused.
        reason: String,
    },
}

/// Where to read variables from: the process environment, or a map in tests.
pub trait Source {
    /// The variable's value, if set and non-empty.
    fn get(&self, name: &str) -> Option<String>;
}

/// The process environment.
pub struct Env;

impl Source for Env {
    fn get(&self, name: &str) -> Option<String> {
        std::env::var(name).ok().filter(|v| !v.is_empty())
    }
}

impl<S: std::hash::BuildHasher> Source for std::collections::HashMap<String, String, S> {
    fn get(&self, name: &str) -> Option<String> {
        std::collections::HashMap::get(self, name).cloned()
    }
}

const MIB: u64 = 1024 * 1024;
const GIB: u64 = 1024 * MIB;

fn required(
    src: &dyn Source,
    name: &'static str,
    hint: &'static str,
) -> Result<String, ConfigError> {
    src.get(name).ok_or(ConfigError::Missing { name, hint })
}

fn parsed<T>(src: &dyn Source, name: &'static str, default: T) -> Result<T, ConfigError>
where
    T: FromStr,
    T::Err: std::fmt::Display,
{
    match src.get(name) {
        None => Ok(default),
        Some(value) => value.parse().map_err(|e: T::Err| ConfigError::Invalid {
            name,
            reason: e.to_string(),
            value,
        }),
    }
}

fn positive(name: &'static str, value: u64) -> Result<u64, ConfigError> {
    if value == 0 {
        return Err(ConfigError::Invalid {
            name,
            value: value.to_string(),
            reason: "must be greater than zero".into(),
        });
    }
    Ok(value)
}

fn at_most(name: &'static str, value: u64, max: u64) -> Result<u64, ConfigError> {
    if value > max {
        return Err(ConfigError::Invalid {
            name,
            value: value.to_string(),
            reason: format!("must be at most {max}"),
        });
    }
    Ok(value)
}

fn between(name: &'static str, value: u64, min: u64, max: u64) -> Result<u64, ConfigError> {
    if value < min {
        return Err(ConfigError::Invalid {
            name,
            value: value.to_string(),
            reason: format!("must be at least {min}"),
        });
    }
    at_most(name, value, max)
}

/// PostgreSQL connection settings.
#[derive(Debug, Clone)]
pub struct DatabaseConfig {
    /// `UPLOAD_DATABASE_URL`, a `postgres://` URL.
    pub url: String,
    /// `UPLOAD_DATABASE_POOL_SIZE`, connections per process (default 16).
    pub pool_size: u32,
}

impl DatabaseConfig {
    /// Reads the database settings.
    pub fn from_source(src: &dyn Source) -> Result<Self, ConfigError> {
        Ok(Self {
            url: required(
                src,
                "UPLOAD_DATABASE_URL",
                "postgres:// URL of the service database",
            )?,
            pool_size: parsed(src, "UPLOAD_DATABASE_POOL_SIZE", 16)?,
        })
    }
}

/// Object store settings: endpoint, credentials and the three buckets.
#[derive(Debug, Clone)]
pub struct StoreConfig {
    /// `UPLOAD_S3_ENDPOINT`; unset means AWS S3's own endpoints.
    pub endpoint: Option<String>,
    /// `UPLOAD_S3_PUBLIC_ENDPOINT`: the store's address as sellers' clients reach it
    /// (a load balancer, a CDN, a proxy). URLs signed for clients (parts, downloads,
    /// previews) use it; the server and worker keep `UPLOAD_S3_ENDPOINT`. Default: the
    /// same as `UPLOAD_S3_ENDPOINT`.
    pub public_endpoint: Option<String>,
    /// `UPLOAD_S3_REGION` (default `us-east-1`).
    pub region: String,
    /// `UPLOAD_S3_ACCESS_KEY_ID`.
    pub access_key_id: String,
    /// `UPLOAD_S3_SECRET_ACCESS_KEY`.
    pub secret_access_key: String,
    /// `UPLOAD_S3_PATH_STYLE` (default true when an endpoint is set).
    pub path_style: bool,
    /// `UPLOAD_BUCKET_TEMP`: uploads land here.
    pub temp_bucket: String,
    /// `UPLOAD_BUCKET_QUARANTINE`: infected files, expired after 4 days.
    pub quarantine_bucket: String,
    /// `UPLOAD_BUCKET_REGULAR`: content-addressed files and previews.
    pub regular_bucket: String,
    /// `UPLOAD_S3_COPY_THRESHOLD_BYTES`: objects larger than this are copied part by
    /// part (UploadPartCopy); smaller ones in one CopyObject. Default and maximum
    /// 5 GiB, S3's limit for one CopyObject.
    pub copy_threshold_bytes: u64,
    /// `UPLOAD_S3_COPY_PART_BYTES`: part size of a part-by-part copy (default 1 GiB;
    /// between 5 MiB and 5 GiB).
    pub copy_part_bytes: u64,
}

impl StoreConfig {
    /// Reads the store settings.
    pub fn from_source(src: &dyn Source) -> Result<Self, ConfigError> {
        let endpoint = src.get("UPLOAD_S3_ENDPOINT");
        Ok(Self {
            path_style: parsed(src, "UPLOAD_S3_PATH_STYLE", endpoint.is_some())?,
            public_endpoint: src
                .get("UPLOAD_S3_PUBLIC_ENDPOINT")
                .or_else(|| endpoint.clone()),
            endpoint,
            region: src
                .get("UPLOAD_S3_REGION")
                .unwrap_or_else(|| "us-east-1".into()),
            access_key_id: required(src, "UPLOAD_S3_ACCESS_KEY_ID", "S3 access key id")?,
            secret_access_key: required(src, "UPLOAD_S3_SECRET_ACCESS_KEY", "S3 secret key")?,
            temp_bucket: src
                .get("UPLOAD_BUCKET_TEMP")
                .unwrap_or_else(|| "temp".into()),
            quarantine_bucket: src
                .get("UPLOAD_BUCKET_QUARANTINE")
                .unwrap_or_else(|| "quarantine".into()),
            regular_bucket: src
                .get("UPLOAD_BUCKET_REGULAR")
                .unwrap_or_else(|| "regular".into()),
            copy_threshold_bytes: at_most(
                "UPLOAD_S3_COPY_THRESHOLD_BYTES",
                parsed(src, "UPLOAD_S3_COPY_THRESHOLD_BYTES", 5 * GIB)?,
                5 * GIB,
            )?,
            copy_part_bytes: between(
                "UPLOAD_S3_COPY_PART_BYTES",
                parsed(src, "UPLOAD_S3_COPY_PART_BYTES", GIB)?,
                5 * MIB,
                5 * GIB,
            )?,
        })
    }
}

/// The rules an upload must follow.
#[derive(Debug, Clone)]
pub struct UploadPolicyConfig {
    /// `UPLOAD_LIMIT_STANDARD_BYTES`: largest file for standard sellers (default 500 MiB).
    pub standard_limit_bytes: u64,
    /// `UPLOAD_LIMIT_PREMIUM_BYTES`: largest file for premium sellers (default 1 GiB).
    pub premium_limit_bytes: u64,
    /// `UPLOAD_DEFAULT_PART_SIZE_BYTES`: part size when the client has no preference (default 16 MiB).
    pub default_part_size_bytes: u64,
    /// `UPLOAD_SIGN_EXPIRY_SECS`: how long a signed part URL stays valid (default 900).
    pub sign_expiry: Duration,
    /// `UPLOAD_TTL_SECS`: time to finish an upload before it expires (default 1 day).
    pub upload_ttl: Duration,
    /// `UPLOAD_PROGRESS_REFRESH_MS`: while someone watches an unfinished upload, how
    /// often the server asks the store how much it holds (default 2000).
    pub progress_refresh: Duration,
    /// `UPLOAD_ALLOWED_TYPES`: comma-separated content types, `type/*` for a family
    /// (default: media, documents, archives, fonts; see [`TypePolicy::DEFAULT`]).
    pub allowed_types: TypePolicy,
    /// `UPLOAD_DOWNLOAD_URL_EXPIRY_SECS`: how long a version's download URL stays
    /// valid (default 300, at most 1 day).
    pub download_expiry: Duration,
}

impl UploadPolicyConfig {
    /// Reads the upload policy.
    pub fn from_source(src: &dyn Source) -> Result<Self, ConfigError> {
        Ok(Self {
            standard_limit_bytes: positive(
                "UPLOAD_LIMIT_STANDARD_BYTES",
                parsed(src, "UPLOAD_LIMIT_STANDARD_BYTES", 500 * MIB)?,
            )?,
            premium_limit_bytes: positive(
                "UPLOAD_LIMIT_PREMIUM_BYTES",
                parsed(src, "UPLOAD_LIMIT_PREMIUM_BYTES", 1024 * MIB)?,
            )?,
            default_part_size_bytes: positive(
                "UPLOAD_DEFAULT_PART_SIZE_BYTES",
                parsed(src, "UPLOAD_DEFAULT_PART_SIZE_BYTES", 16 * MIB)?,
            )?,
            sign_expiry: Duration::from_secs(at_most(
                "UPLOAD_SIGN_EXPIRY_SECS",
                positive(
                    "UPLOAD_SIGN_EXPIRY_SECS",
                    parsed(src, "UPLOAD_SIGN_EXPIRY_SECS", 900)?,
                )?,
                // SigV4 presigned URLs live at most 7 days.
                7 * 24 * 3600,
            )?),
            upload_ttl: Duration::from_secs(positive(
                "UPLOAD_TTL_SECS",
                parsed(src, "UPLOAD_TTL_SECS", 24 * 3600)?,
            )?),
            download_expiry: Duration::from_secs(at_most(
                "UPLOAD_DOWNLOAD_URL_EXPIRY_SECS",
                positive(
                    "UPLOAD_DOWNLOAD_URL_EXPIRY_SECS",
                    parsed(src, "UPLOAD_DOWNLOAD_URL_EXPIRY_SECS", 300)?,
                )?,
                24 * 3600,
            )?),
            progress_refresh: Duration::from_millis(positive(
                "UPLOAD_PROGRESS_REFRESH_MS",
                parsed(src, "UPLOAD_PROGRESS_REFRESH_MS", 2000)?,
            )?),
            allowed_types: parsed(
                src,
                "UPLOAD_ALLOWED_TYPES",
                TypePolicy::DEFAULT
                    .parse()
                    .map_err(|reason| ConfigError::Invalid {
                        name: "UPLOAD_ALLOWED_TYPES",
                        value: TypePolicy::DEFAULT.into(),
                        reason,
                    })?,
            )?,
        })
    }
}

/// Token verification settings.
#[derive(Clone)]
pub struct AuthConfig {
    /// `UPLOAD_JWT_SECRET`: the HS256 secret that signs bearer tokens.
    pub jwt_secret: String,
}

impl std::fmt::Debug for AuthConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuthConfig")
            .field("jwt_secret", &"<redacted>")
            .finish()
    }
}

impl AuthConfig {
    /// Reads the auth settings; the secret must be at least 32 bytes.
    pub fn from_source(src: &dyn Source) -> Result<Self, ConfigError> {
        let jwt_secret = required(src, "UPLOAD_JWT_SECRET", "HS256 secret for bearer tokens")?;
        if jwt_secret.len() < 32 {
            return Err(ConfigError::Invalid {
                name: "UPLOAD_JWT_SECRET",
                value: "<redacted>".into(),
                reason: "must be at least 32 bytes".into(),
            });
        }
        Ok(Self { jwt_secret })
    }
}

/// Everything the gRPC server needs.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// `UPLOAD_GRPC_ADDR` (default 127.0.0.1:50051).
    pub listen_addr: SocketAddr,
    /// Database settings.
    pub database: DatabaseConfig,
    /// Store settings.
    pub store: StoreConfig,
    /// Upload rules.
    pub policy: UploadPolicyConfig,
    /// Token settings.
    pub auth: AuthConfig,
}

impl ServerConfig {
    /// Reads the server's configuration from the process environment.
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_source(&Env)
    }

    /// Reads the server's configuration from `src`.
    pub fn from_source(src: &dyn Source) -> Result<Self, ConfigError> {
        Ok(Self {
            listen_addr: parsed(
                src,
                "UPLOAD_GRPC_ADDR",
                SocketAddr::from(([127, 0, 0, 1], 50051)),
            )?,
            database: DatabaseConfig::from_source(src)?,
            store: StoreConfig::from_source(src)?,
            policy: UploadPolicyConfig::from_source(src)?,
            auth: AuthConfig::from_source(src)?,
        })
    }
}

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
            .field("url", &self.url)
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
        if !(url.starts_with("http://") || url.starts_with("https://")) {
            return Err(ConfigError::Invalid {
                name: "UPLOAD_WEBHOOK_URL",
                value: url,
                reason: "must be an http:// or https:// URL".into(),
            });
        }
        let secret = required(
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
        })
    }
}

/// Everything the workers need.
#[derive(Debug, Clone)]
pub struct WorkerConfig {
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
    /// `UPLOAD_JOB_MAX_ATTEMPTS`: attempts per job before the upload fails (default 5).
    pub max_attempts: u32,
    /// `UPLOAD_JOB_RETRY_BASE_SECS`: first retry delay, doubled each attempt (default 5).
    pub retry_base: Duration,
    /// `UPLOAD_WORKER_CONCURRENCY`: jobs run at once per queue (default 4).
    pub concurrency: usize,
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
        Ok(Self {
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
                parsed(src, "UPLOAD_JOB_MAX_ATTEMPTS", 5u64)?,
            )? as u32,
            retry_base: Duration::from_secs(parsed(src, "UPLOAD_JOB_RETRY_BASE_SECS", 5)?),
            concurrency: positive(
                "UPLOAD_WORKER_CONCURRENCY",
                parsed(src, "UPLOAD_WORKER_CONCURRENCY", 4u64)?,
            )? as usize,
            sweep_interval: Duration::from_secs(positive(
                "UPLOAD_SWEEP_INTERVAL_SECS",
                parsed(src, "UPLOAD_SWEEP_INTERVAL_SECS", 60)?,
            )?),
            stuck_after: Duration::from_secs(parsed(src, "UPLOAD_STUCK_AFTER_SECS", 900)?),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn base() -> HashMap<String, String> {
        [
            ("UPLOAD_DATABASE_URL", "postgres://localhost/x"),
            ("UPLOAD_S3_ACCESS_KEY_ID", "GK1"),
            ("UPLOAD_S3_SECRET_ACCESS_KEY", "s"),
            ("UPLOAD_JWT_SECRET", "0123456789abcdef0123456789abcdef"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
    }

    #[test]
    fn missing_variable_is_named() {
        let mut env = base();
        env.remove("UPLOAD_DATABASE_URL");
        let err = ServerConfig::from_source(&env).unwrap_err().to_string();
        assert!(err.contains("UPLOAD_DATABASE_URL"), "{err}");
    }

    #[test]
    fn invalid_number_is_named_with_its_value() {
        let mut env = base();
        env.insert("UPLOAD_LIMIT_PREMIUM_BYTES".into(), "1GB".into());
        let err = ServerConfig::from_source(&env).unwrap_err().to_string();
        assert!(
            err.contains("UPLOAD_LIMIT_PREMIUM_BYTES") && err.contains("1GB"),
            "{err}"
        );
    }

    #[test]
    fn short_secret_is_refused_without_echoing_it() {
        let mut env = base();
        env.insert("UPLOAD_JWT_SECRET".into(), "short-secret".into());
        let err = ServerConfig::from_source(&env).unwrap_err().to_string();
        assert!(
            err.contains("UPLOAD_JWT_SECRET") && !err.contains("short-secret"),
            "{err}"
        );
    }

    #[test]
    fn sign_expiry_cannot_exceed_what_sigv4_allows() {
        let mut env = base();
        env.insert("UPLOAD_SIGN_EXPIRY_SECS".into(), "604801".into());
        let err = ServerConfig::from_source(&env).unwrap_err().to_string();
        assert!(
            err.contains("UPLOAD_SIGN_EXPIRY_SECS") && err.contains("at most"),
            "{err}"
        );
        env.insert("UPLOAD_SIGN_EXPIRY_SECS".into(), "0".into());
        assert!(ServerConfig::from_source(&env).is_err());
    }

    #[test]
    fn defaults_match_the_marketplace_limits() {
        let cfg = ServerConfig::from_source(&base()).unwrap();
        assert_eq!(cfg.policy.standard_limit_bytes, 500 * 1024 * 1024);
        assert_eq!(cfg.policy.premium_limit_bytes, 1024 * 1024 * 1024);
        assert!(cfg.store.endpoint.is_none() && !cfg.store.path_style);
    }

    fn worker_env() -> HashMap<String, String> {
        let mut env = base();
        env.remove("UPLOAD_JWT_SECRET");
        env
    }

    #[test]
    fn worker_defaults_scan_and_preview_sensibly() {
        let cfg = WorkerConfig::from_source(&worker_env()).unwrap();
        assert_eq!(cfg.clamd, ClamdAddr::Tcp("127.0.0.1:3310".into()));
        assert_eq!(cfg.media.thumbnail_sizes, vec![256, 1024]);
        assert!(cfg.webhook.is_none());
        assert!(cfg.policy.allowed_types.allows("video/mp4"));
        assert!(!cfg.policy.allowed_types.allows("application/x-msdownload"));
    }

    #[test]
    fn a_webhook_needs_a_long_secret() {
        let mut env = worker_env();
        env.insert(
            "UPLOAD_WEBHOOK_URL".into(),
            "http://127.0.0.1:9/hook".into(),
        );
        let err = WorkerConfig::from_source(&env).unwrap_err().to_string();
        assert!(err.contains("UPLOAD_WEBHOOK_SECRET"), "{err}");
        env.insert("UPLOAD_WEBHOOK_SECRET".into(), "too-short".into());
        let err = WorkerConfig::from_source(&env).unwrap_err().to_string();
        assert!(
            err.contains("at least 32") && !err.contains("too-short"),
            "{err}"
        );
        env.insert("UPLOAD_WEBHOOK_SECRET".into(), "k".repeat(32));
        assert!(WorkerConfig::from_source(&env).unwrap().webhook.is_some());
    }

    #[test]
    fn bad_media_and_scanner_settings_are_named() {
        let mut env = worker_env();
        env.insert("UPLOAD_THUMBNAIL_SIZES".into(), "256,huge".into());
        let err = WorkerConfig::from_source(&env).unwrap_err().to_string();
        assert!(err.contains("UPLOAD_THUMBNAIL_SIZES"), "{err}");
        let mut env = worker_env();
        env.insert("UPLOAD_CLAMD_ADDR".into(), "clamd".into());
        let err = WorkerConfig::from_source(&env).unwrap_err().to_string();
        assert!(err.contains("UPLOAD_CLAMD_ADDR"), "{err}");
        env.insert("UPLOAD_CLAMD_ADDR".into(), "/run/clamav/clamd.ctl".into());
        assert!(matches!(
            WorkerConfig::from_source(&env).unwrap().clamd,
            ClamdAddr::Unix(_)
        ));
        let mut env = worker_env();
        env.insert("UPLOAD_ALLOWED_TYPES".into(), "video".into());
        let err = WorkerConfig::from_source(&env).unwrap_err().to_string();
        assert!(err.contains("UPLOAD_ALLOWED_TYPES"), "{err}");
    }
}
