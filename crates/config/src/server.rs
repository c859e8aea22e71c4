//! What the gRPC server reads: the upload policy, the listen address, TLS, fair
//! use and browsers' origins (token verification is in `auth`).

use std::net::SocketAddr;
use std::time::Duration;

use upload_domain::TypePolicy;

use crate::auth::AuthConfig;
use crate::source::{MIB, at_most, parsed, positive};
use crate::{ConfigError, DatabaseConfig, Env, Source, StoreConfig};

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
    /// `UPLOAD_ALLOW_SOFTWARE`: the marketplace sells software, so programs and
    /// scripts (by name or by their bytes) are accepted, scanned and marked as
    /// software (default false: refused).
    pub allow_software: bool,
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
            allow_software: parsed(src, "UPLOAD_ALLOW_SOFTWARE", false)?,
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

/// Everything the gRPC server needs.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// `UPLOAD_GRPC_ADDR` (default 127.0.0.1:50051).
    pub listen_addr: SocketAddr,
    /// `UPLOAD_METRICS_ADDR`: where Prometheus scrapes `/metrics` (unset: not served).
    pub metrics_addr: Option<SocketAddr>,
    /// `UPLOAD_READINESS_INTERVAL_SECS`: how often readiness (the database and
    /// the store answering) is checked (default 5).
    pub readiness_interval: Duration,
    /// Database settings.
    pub database: DatabaseConfig,
    /// Store settings.
    pub store: StoreConfig,
    /// Upload rules.
    pub policy: UploadPolicyConfig,
    /// Token settings.
    pub auth: AuthConfig,
    /// `UPLOAD_CORS_ORIGINS`: the browser origins gRPC-web answers (default none).
    pub cors_origins: CorsOrigins,
    /// Per-caller fair-use limits.
    pub fair_use: FairUseConfig,
    /// TLS on the gRPC port; plaintext when `None`.
    pub tls: Option<TlsConfig>,
}

/// TLS on the gRPC port, from PEM files read again when they change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsConfig {
    /// `UPLOAD_TLS_CERT`: the certificate chain (PEM), leaf first.
    pub cert: std::path::PathBuf,
    /// `UPLOAD_TLS_KEY`: its private key (PEM).
    pub key: std::path::PathBuf,
    /// `UPLOAD_TLS_RELOAD_SECS`: how often the files are looked at for a renewed
    /// certificate (default 10).
    pub reload: Duration,
    /// `UPLOAD_TLS_CLIENT_CA`: when set, every client must present a certificate
    /// this CA (PEM) issued, or the handshake fails (mTLS).
    pub client_ca: Option<std::path::PathBuf>,
    /// `UPLOAD_MTLS_SERVICES`: services that may call with their client
    /// certificate instead of a token, by the name the certificate gives (a
    /// service name: letters, digits, `-` and `_`), with their scopes:
    /// `orders=access:grant downloads:read;catalogue=items:submit`.
    pub mtls_services: Vec<(upload_domain::SellerId, Vec<upload_domain::Scope>)>,
}

impl TlsConfig {
    /// Reads the TLS settings: both files or neither.
    pub fn from_source(src: &dyn Source) -> Result<Option<Self>, ConfigError> {
        let set = |name: &'static str| src.get(name).filter(|v| !v.trim().is_empty());
        let (cert, key) = match (set("UPLOAD_TLS_CERT"), set("UPLOAD_TLS_KEY")) {
            (None, None) => return Ok(None),
            (Some(cert), Some(key)) => (cert, key),
            (Some(_), None) => {
                return Err(ConfigError::Missing {
                    name: "UPLOAD_TLS_KEY",
                    hint: "the private key of UPLOAD_TLS_CERT (PEM)",
                });
            }
            (None, Some(_)) => {
                return Err(ConfigError::Missing {
                    name: "UPLOAD_TLS_CERT",
                    hint: "the certificate chain of UPLOAD_TLS_KEY (PEM)",
                });
            }
        };
        let mtls_services = match set("UPLOAD_MTLS_SERVICES") {
            None => Vec::new(),
            Some(text) => {
                crate::auth::parse_mtls_services(&text).map_err(|reason| ConfigError::Invalid {
                    name: "UPLOAD_MTLS_SERVICES",
                    value: text.clone(),
                    reason,
                })?
            }
        };
        Ok(Some(Self {
            client_ca: set("UPLOAD_TLS_CLIENT_CA").map(Into::into),
            mtls_services,
            cert: cert.into(),
            key: key.into(),
            reload: Duration::from_secs(positive(
                "UPLOAD_TLS_RELOAD_SECS",
                parsed(src, "UPLOAD_TLS_RELOAD_SECS", 10)?,
            )?),
        }))
    }
}

/// Fair use, per seller or buyer a call acts for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FairUseConfig {
    /// `UPLOAD_CREATES_PER_MINUTE`: CreateUpload calls a minute (default 60).
    pub creates_per_minute: u32,
    /// `UPLOAD_MAX_OPEN_UPLOADS`: unfinished uploads at once (default 50).
    pub max_open_uploads: u64,
    /// `UPLOAD_MAX_WATCHES`: WatchProgress and WatchItem streams open at once
    /// (default 16).
    pub max_watches: usize,
}

impl FairUseConfig {
    /// Reads the limits; each must be above zero.
    pub fn from_source(src: &dyn Source) -> Result<Self, ConfigError> {
        Ok(Self {
            creates_per_minute: u32::try_from(positive(
                "UPLOAD_CREATES_PER_MINUTE",
                parsed(src, "UPLOAD_CREATES_PER_MINUTE", 60)?,
            )?)
            .unwrap_or(u32::MAX),
            max_open_uploads: positive(
                "UPLOAD_MAX_OPEN_UPLOADS",
                parsed(src, "UPLOAD_MAX_OPEN_UPLOADS", 50)?,
            )?,
            max_watches: usize::try_from(positive(
                "UPLOAD_MAX_WATCHES",
                parsed(src, "UPLOAD_MAX_WATCHES", 16)?,
            )?)
            .unwrap_or(usize::MAX),
        })
    }
}

/// The browser origins allowed to call the API through gRPC-web: a comma-separated
/// list of `scheme://host[:port]`, where the port may be `*` (any port, for a page
/// served locally on a random one). Nothing else is allowed; there is no "any
/// origin".
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CorsOrigins(Vec<String>);

impl CorsOrigins {
    /// Whether a request's `Origin` header is one of the allowed origins.
    pub fn allows(&self, origin: &str) -> bool {
        self.0
            .iter()
            .any(|allowed| match allowed.strip_suffix(":*") {
                Some(base) => origin
                    .strip_prefix(base)
                    .and_then(|rest| rest.strip_prefix(':'))
                    .is_some_and(|port| {
                        !port.is_empty() && port.bytes().all(|b| b.is_ascii_digit())
                    }),
                None => origin == allowed,
            })
    }

    /// Whether no origin at all is allowed.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl std::str::FromStr for CorsOrigins {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let mut origins = Vec::new();
        for entry in s.split(',').map(str::trim).filter(|e| !e.is_empty()) {
            let rest = entry
                .strip_prefix("https://")
                .or_else(|| entry.strip_prefix("http://"))
                .ok_or_else(|| {
                    format!("{entry:?} is not an origin: write scheme://host[:port], http or https")
                })?;
            let (host, port) = match rest.rsplit_once(':') {
                Some((host, port)) => (host, Some(port)),
                None => (rest, None),
            };
            let host_ok = !host.is_empty()
                && host
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-');
            let port_ok = port.is_none_or(|p| {
                p == "*" || (!p.is_empty() && p.len() <= 5 && p.bytes().all(|b| b.is_ascii_digit()))
            });
            if !host_ok || !port_ok {
                return Err(format!(
                    "{entry:?} is not an origin: write scheme://host[:port] with no path, the port a number or *"
                ));
            }
            origins.push(entry.to_owned());
        }
        Ok(Self(origins))
    }
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
            metrics_addr: crate::source::optional(src, "UPLOAD_METRICS_ADDR")?,
            readiness_interval: Duration::from_secs(positive(
                "UPLOAD_READINESS_INTERVAL_SECS",
                parsed(src, "UPLOAD_READINESS_INTERVAL_SECS", 5)?,
            )?),
            database: DatabaseConfig::from_source(src)?,
            store: StoreConfig::from_source(src)?,
            policy: UploadPolicyConfig::from_source(src)?,
            auth: AuthConfig::from_source(src)?,
            cors_origins: parsed(src, "UPLOAD_CORS_ORIGINS", CorsOrigins::default())?,
            fair_use: FairUseConfig::from_source(src)?,
            tls: TlsConfig::from_source(src)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cors_origins_are_listed_exactly_or_with_any_port() {
        let origins: CorsOrigins = "https://seller.example, http://127.0.0.1:*"
            .parse()
            .unwrap();
        assert!(origins.allows("https://seller.example"));
        assert!(origins.allows("http://127.0.0.1:43117"));
        assert!(!origins.allows("https://seller.example.evil"));
        assert!(!origins.allows("http://seller.example"));
        assert!(!origins.allows("http://127.0.0.1"));
        assert!(!origins.allows("http://127.0.0.1:80@evil"));
        assert!(!origins.allows("null"));
        for bad in [
            "*",
            "seller.example",
            "https://a.example/path",
            "https://a.example:x",
        ] {
            assert!(bad.parse::<CorsOrigins>().is_err(), "{bad} accepted");
        }
        assert!("".parse::<CorsOrigins>().unwrap().is_empty());
    }
}
