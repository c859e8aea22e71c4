//! What server and worker both read: the database and the object store.

use upload_domain::Bucket;

use crate::source::{GIB, MIB, at_most, between, parsed, required};
use crate::{ConfigError, Source};

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
        })
    }
}
