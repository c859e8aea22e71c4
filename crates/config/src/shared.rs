//! What server and worker both read: the database and the object store.

use std::time::Duration;

use upload_domain::Bucket;

use crate::source::{GIB, MIB, at_most, between, parsed, required, secret, without_password};
use crate::{ConfigError, Source};

/// What the services tell about themselves besides metrics: logs and traces.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TelemetryConfig {
    /// `UPLOAD_LOG_FORMAT`.
    pub log_format: LogFormat,
    /// `UPLOAD_OTLP_ENDPOINT`: an OTLP/gRPC collector (`http://collector:4317`)
    /// that receives traces; unset: no traces are exported.
    pub otlp_endpoint: Option<String>,
}

impl TelemetryConfig {
    /// Reads the log format and the OTLP endpoint.
    pub fn from_source(src: &dyn Source) -> Result<Self, ConfigError> {
        let otlp_endpoint = src.get("UPLOAD_OTLP_ENDPOINT");
        if let Some(url) = &otlp_endpoint
            && !(url.starts_with("http://") || url.starts_with("https://"))
        {
            return Err(ConfigError::Invalid {
                name: "UPLOAD_OTLP_ENDPOINT",
                value: url.clone(),
                reason: "expected an http:// or https:// URL of an OTLP/gRPC collector".into(),
            });
        }
        Ok(Self {
            log_format: LogFormat::from_source(src)?,
            otlp_endpoint,
        })
    }
}

/// How the services write their logs (to stderr).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LogFormat {
    /// Lines for people.
    #[default]
    Text,
    /// One JSON object per line, every field (upload, submission, seller ids) a key.
    Json,
}

impl LogFormat {
    /// `UPLOAD_LOG_FORMAT`: `text` (default) or `json`.
    pub fn from_source(src: &dyn Source) -> Result<Self, ConfigError> {
        match src.get("UPLOAD_LOG_FORMAT").as_deref() {
            None | Some("text") => Ok(Self::Text),
            Some("json") => Ok(Self::Json),
            Some(other) => Err(ConfigError::Invalid {
                name: "UPLOAD_LOG_FORMAT",
                value: other.to_owned(),
                reason: "expected text or json".into(),
            }),
        }
    }
}

/// PostgreSQL connection settings.
#[derive(Clone)]
pub struct DatabaseConfig {
    /// `UPLOAD_DATABASE_URL`, a `postgres://` URL.
    pub url: String,
    /// `UPLOAD_DATABASE_POOL_SIZE`, connections per process (default 16).
    pub pool_size: u32,
}

impl std::fmt::Debug for DatabaseConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DatabaseConfig")
            .field("url", &without_password(&self.url))
            .field("pool_size", &self.pool_size)
            .finish()
    }
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
#[derive(Clone)]
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
    /// `UPLOAD_S3_CONNECT_TIMEOUT_MS`: how long a connection to the store may take
    /// (default 3000).
    pub connect_timeout: Duration,
    /// `UPLOAD_S3_READ_TIMEOUT_SECS`: how long the store may keep silent, before its
    /// answer and between chunks of a body being read (default 60).
    pub read_timeout: Duration,
    /// `UPLOAD_S3_MAX_ATTEMPTS`: tries per store request, with exponential backoff
    /// and jitter between them, for what retrying can fix: 5xx, throttling, dropped
    /// connections, time-outs (default 4).
    pub max_attempts: u32,
    /// `UPLOAD_S3_ETAG_IS_MD5`: whether a part's ETag is the MD5 of its body
    /// (default true: Garage, S3 without encryption or with SSE-S3). False with
    /// SSE-KMS or SSE-C: completion then checks the parts' sizes, and the scan
    /// checks each part's bytes against the MD5 signed for it.
    pub etag_is_md5: bool,
}

impl std::fmt::Debug for StoreConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoreConfig")
            .field("endpoint", &self.endpoint)
            .field("public_endpoint", &self.public_endpoint)
            .field("region", &self.region)
            .field("access_key_id", &"<redacted>")
            .field("secret_access_key", &"<redacted>")
            .field("path_style", &self.path_style)
            .field("temp_bucket", &self.temp_bucket)
            .field("quarantine_bucket", &self.quarantine_bucket)
            .field("regular_bucket", &self.regular_bucket)
            .field("copy_threshold_bytes", &self.copy_threshold_bytes)
            .field("copy_part_bytes", &self.copy_part_bytes)
            .field("connect_timeout", &self.connect_timeout)
            .field("read_timeout", &self.read_timeout)
            .field("max_attempts", &self.max_attempts)
            .field("etag_is_md5", &self.etag_is_md5)
            .finish()
    }
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
            access_key_id: secret(src, "UPLOAD_S3_ACCESS_KEY_ID", "S3 access key id")?,
            secret_access_key: secret(src, "UPLOAD_S3_SECRET_ACCESS_KEY", "S3 secret key")?,
            temp_bucket: src
                .get("UPLOAD_BUCKET_TEMP")
                .unwrap_or_else(|| Bucket::Temp.as_str().into()),
            quarantine_bucket: src
                .get("UPLOAD_BUCKET_QUARANTINE")
                .unwrap_or_else(|| Bucket::Quarantine.as_str().into()),
            regular_bucket: src
                .get("UPLOAD_BUCKET_REGULAR")
                .unwrap_or_else(|| Bucket::Regular.as_str().into()),
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
            connect_timeout: Duration::from_millis(between(
                "UPLOAD_S3_CONNECT_TIMEOUT_MS",
                parsed(src, "UPLOAD_S3_CONNECT_TIMEOUT_MS", 3000)?,
                100,
                60_000,
            )?),
            read_timeout: Duration::from_secs(between(
                "UPLOAD_S3_READ_TIMEOUT_SECS",
                parsed(src, "UPLOAD_S3_READ_TIMEOUT_SECS", 60)?,
                1,
                3600,
            )?),
            max_attempts: u32::try_from(between(
                "UPLOAD_S3_MAX_ATTEMPTS",
                parsed(src, "UPLOAD_S3_MAX_ATTEMPTS", 4)?,
                1,
                10,
            )?)
            .unwrap_or(4),
            etag_is_md5: parsed(src, "UPLOAD_S3_ETAG_IS_MD5", true)?,
        })
    }
}
