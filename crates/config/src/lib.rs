//! Configuration read from the environment. Every error names the variable at fault,
//! so an operator knows what to fix without reading the code.
//!
//! Where things live: `source` the variables' source and the reading helpers;
//! `shared` the database and store settings; `server` and `worker` what each
//! process reads on top; `auth` who may call the server; `queues` which queues a
//! worker runs.

mod auth;
mod queues;
mod server;
mod shared;
mod source;
mod worker;

pub use auth::AuthConfig;
pub use queues::QueueRun;
pub use server::{CorsOrigins, FairUseConfig, ServerConfig, TlsConfig, UploadPolicyConfig};
pub use shared::{DatabaseConfig, LogFormat, StoreConfig, TelemetryConfig};
pub use source::{ConfigError, Env, PLACEHOLDER, Source};
pub use upload_domain::TypePolicy;
pub use worker::{ClamdAddr, MediaConfig, WebhookConfig, WorkerConfig};

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
            ("UPLOAD_JWT_ALLOW_HS256", "true"),
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
        env.remove("UPLOAD_JWT_ALLOW_HS256");
        env.insert("UPLOAD_MEDIA_IN_PROCESS".into(), "true".into());
        env
    }

    #[test]
    fn a_media_worker_refuses_to_run_the_tools_beside_its_secrets_unless_told() {
        let mut env = worker_env();
        env.remove("UPLOAD_MEDIA_IN_PROCESS");
        let err = WorkerConfig::from_source(&env).unwrap_err().to_string();
        assert!(
            err.contains("UPLOAD_MEDIA_SANDBOX_SOCKET") && err.contains("UPLOAD_MEDIA_IN_PROCESS"),
            "{err}"
        );
        // A worker of other queues runs no media tool: nothing to refuse.
        env.insert("UPLOAD_WORKER_QUEUES".into(), "scan,notify".into());
        assert!(WorkerConfig::from_source(&env).is_ok());
        env.insert("UPLOAD_WORKER_QUEUES".into(), "preview".into());
        assert!(WorkerConfig::from_source(&env).is_err());
        env.insert(
            "UPLOAD_MEDIA_SANDBOX_SOCKET".into(),
            "/run/upload-media/media.sock".into(),
        );
        assert!(WorkerConfig::from_source(&env).is_ok());
    }

    #[test]
    fn tokens_are_verified_with_a_jwks_and_hs256_only_where_development_opts_in() {
        let mut env = base();
        env.remove("UPLOAD_JWT_ALLOW_HS256");
        let err = ServerConfig::from_source(&env).unwrap_err().to_string();
        assert!(err.contains("UPLOAD_JWT_ALLOW_HS256"), "{err}");
        env.remove("UPLOAD_JWT_SECRET");
        let err = ServerConfig::from_source(&env).unwrap_err().to_string();
        assert!(err.contains("UPLOAD_JWKS"), "{err}");
        env.insert("UPLOAD_JWKS".into(), "/etc/upload/jwks.json".into());
        let err = ServerConfig::from_source(&env).unwrap_err().to_string();
        assert!(err.contains("UPLOAD_JWT_ISSUER"), "{err}");
        env.insert("UPLOAD_JWT_ISSUER".into(), "https://auth.example".into());
        env.insert("UPLOAD_JWT_AUDIENCE".into(), "upload".into());
        let auth = ServerConfig::from_source(&env).unwrap().auth;
        assert_eq!(auth.jwks.as_deref(), Some("/etc/upload/jwks.json"));
        assert!(auth.jwt_secret.is_none());
        assert_eq!(auth.jwks_refresh.as_secs(), 300);
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
            "https://hooks.internal/hook".into(),
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

    #[test]
    fn the_examples_placeholder_secrets_are_refused_and_never_shown() {
        for name in [
            "UPLOAD_JWT_SECRET",
            "UPLOAD_S3_ACCESS_KEY_ID",
            "UPLOAD_S3_SECRET_ACCESS_KEY",
        ] {
            let mut env = base();
            env.insert(
                name.into(),
                format!("{PLACEHOLDER}-to-something-32-bytes-long-xx"),
            );
            let err = ServerConfig::from_source(&env).unwrap_err().to_string();
            assert!(err.contains(name) && err.contains("placeholder"), "{err}");
            assert!(!err.contains(PLACEHOLDER), "{err}");
        }
        let mut env = worker_env();
        env.insert(
            "UPLOAD_WEBHOOK_URL".into(),
            "https://hooks.example/x".into(),
        );
        env.insert(
            "UPLOAD_WEBHOOK_SECRET".into(),
            format!("{PLACEHOLDER}-to-32-or-more-random-bytes"),
        );
        let err = WorkerConfig::from_source(&env).unwrap_err().to_string();
        assert!(err.contains("UPLOAD_WEBHOOK_SECRET"), "{err}");
    }

    #[test]
    fn no_configuration_prints_a_secret() {
        let mut env = worker_env();
        env.insert(
            "UPLOAD_DATABASE_URL".into(),
            "postgres://upload:db-password-9@db.internal:5432/upload".into(),
        );
        env.insert("UPLOAD_S3_ACCESS_KEY_ID".into(), "GKkey-id-1234".into());
        env.insert(
            "UPLOAD_S3_SECRET_ACCESS_KEY".into(),
            "s3-secret-5678".into(),
        );
        env.insert(
            "UPLOAD_WEBHOOK_URL".into(),
            "https://hooks.example/x".into(),
        );
        env.insert("UPLOAD_WEBHOOK_SECRET".into(), "w".repeat(40));
        env.insert("UPLOAD_JWT_SECRET".into(), "j".repeat(40));
        env.insert("UPLOAD_JWT_ALLOW_HS256".into(), "true".into());
        let shown = format!(
            "{:?} {:?}",
            WorkerConfig::from_source(&env).unwrap(),
            ServerConfig::from_source(&env).unwrap()
        );
        for secret in [
            "db-password-9",
            "GKkey-id-1234",
            "s3-secret-5678",
            &"w".repeat(40),
            &"j".repeat(40),
        ] {
            assert!(!shown.contains(secret), "{secret} shown in {shown}");
        }
        assert!(shown.contains("postgres://upload:<redacted>@db.internal:5432/upload"));
    }

    #[test]
    fn a_password_in_the_database_url_s_query_is_redacted_too() {
        let mut env = worker_env();
        env.insert(
            "UPLOAD_DATABASE_URL".into(),
            "postgres://db.internal/upload?user=upload&password=q-secret-1&sslmode=require&SSLPASSWORD=key-secret-2".into(),
        );
        let shown = format!("{:?}", WorkerConfig::from_source(&env).unwrap());
        for secret in ["q-secret-1", "key-secret-2"] {
            assert!(!shown.contains(secret), "{secret} shown in {shown}");
        }
        assert!(
            shown.contains("postgres://db.internal/upload?user=upload&password=<redacted>&sslmode=require&SSLPASSWORD=<redacted>"),
            "{shown}"
        );
    }

    #[test]
    fn no_shape_of_database_url_shows_its_password() {
        for (url, secret, shown) in [
            (
                "postgres://u:p?w@h/db",
                "p?w",
                "postgres://u:<redacted>@h/db",
            ),
            (
                "postgres://u:s3cret@h:5432/db?sslmode=require",
                "s3cret",
                "postgres://u:<redacted>@h:5432/db?sslmode=require",
            ),
            (
                "postgres://h?user=a@b&password=x-9",
                "x-9",
                "postgres://h?user=a@b&password=<redacted>",
            ),
            (
                "postgres://u@h/db?sslpassword=k-8&sslmode=verify-full",
                "k-8",
                "postgres://u@h/db?sslpassword=<redacted>&sslmode=verify-full",
            ),
            (
                "postgres:///db?host=/run/pg&password=y-7",
                "y-7",
                "postgres:///db?host=/run/pg&password=<redacted>",
            ),
        ] {
            let got = crate::source::without_password(url);
            assert!(!got.contains(secret), "{url}: {got}");
            assert_eq!(got, shown, "{url}");
        }
    }

    #[test]
    fn a_webhook_is_https_unless_plain_http_is_opted_in_and_its_query_is_never_shown() {
        let mut env = worker_env();
        env.insert("UPLOAD_WEBHOOK_SECRET".into(), "w".repeat(40));
        env.insert(
            "UPLOAD_WEBHOOK_URL".into(),
            "http://hooks.internal/x?token=hook-token-3".into(),
        );
        let err = WorkerConfig::from_source(&env).unwrap_err().to_string();
        assert!(err.contains("UPLOAD_WEBHOOK_ALLOW_HTTP"), "{err}");
        assert!(!err.contains("hook-token-3"), "{err}");
        env.insert("UPLOAD_WEBHOOK_ALLOW_HTTP".into(), "true".into());
        let config = WorkerConfig::from_source(&env).unwrap();
        assert!(!format!("{config:?}").contains("hook-token-3"));
        env.insert("UPLOAD_WEBHOOK_URL".into(), "ftp://hooks.internal/x".into());
        assert!(WorkerConfig::from_source(&env).is_err());
        env.insert(
            "UPLOAD_WEBHOOK_URL".into(),
            "https://hooks.internal/x".into(),
        );
        env.remove("UPLOAD_WEBHOOK_ALLOW_HTTP");
        assert!(WorkerConfig::from_source(&env).is_ok());
    }
}
