//! Opening a diesel connection as the database URL's `sslmode` asks, the way
//! libpq reads it: `disable`, `allow` and `prefer` connect in plain text (the
//! local stack); `require` encrypts and, given an `sslrootcert`, checks the
//! server's certificate against it; `verify-ca` checks the certificate against
//! `sslrootcert` (or the system's roots); `verify-full` also checks that it names
//! the host connected to. The job queue's pool (sqlx) reads the same URL itself.

use std::sync::Arc;

use diesel_async::{AsyncConnection, AsyncPgConnection};
use rustls_pki_types::{CertificateDer, ServerName, UnixTime};
use tokio_rustls::rustls::client::WebPkiServerVerifier;
use tokio_rustls::rustls::client::danger::{
    HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier,
};
use tokio_rustls::rustls::{
    self, ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme,
};

use crate::DbError;

/// What the URL's `sslmode` asks of the connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SslMode {
    /// No TLS (`disable`, `allow`, `prefer`, or none given).
    Plain,
    /// Encrypted; the certificate checked only when a root certificate is given.
    Require,
    /// Encrypted, the certificate checked against the roots.
    VerifyCa,
    /// Encrypted, the certificate checked and naming the host.
    VerifyFull,
}

/// The URL's TLS settings, and the URL tokio-postgres is given (it knows
/// `sslmode` up to `require`, and no `sslrootcert`).
fn tls_settings(url: &str) -> Result<(SslMode, Option<String>, String), DbError> {
    let bad = |e: String| DbError::Connect(format!("the database URL is unusable: {e}"));
    let mut parsed = url::Url::parse(url).map_err(|e| bad(e.to_string()))?;
    let (mut mode, mut root_cert) = (SslMode::Plain, None);
    let mut kept = Vec::new();
    for (name, value) in parsed.query_pairs() {
        match name.as_ref() {
            "sslmode" => {
                mode = match value.as_ref() {
                    "disable" | "allow" | "prefer" => SslMode::Plain,
                    "require" => SslMode::Require,
                    "verify-ca" => SslMode::VerifyCa,
                    "verify-full" => SslMode::VerifyFull,
                    other => return Err(bad(format!("unknown sslmode {other:?}"))),
                }
            }
            "sslrootcert" => root_cert = Some(value.into_owned()),
            _ => kept.push((name.into_owned(), value.into_owned())),
        }
    }
    if mode != SslMode::Plain {
        kept.push(("sslmode".into(), "require".into()));
    }
    parsed.set_query(None);
    if !kept.is_empty() {
        parsed.query_pairs_mut().extend_pairs(kept);
    }
    Ok((mode, root_cert, parsed.into()))
}

/// Opens one connection to `url`.
pub async fn establish(url: &str) -> Result<AsyncPgConnection, DbError> {
    let (mode, root_cert, url) = tls_settings(url)?;
    if mode == SslMode::Plain {
        return AsyncPgConnection::establish(&url)
            .await
            .map_err(|e| DbError::Connect(e.to_string()));
    }
    let config = client_config(mode, root_cert.as_deref())?;
    let (client, connection) =
        tokio_postgres::connect(&url, tokio_postgres_rustls::MakeRustlsConnect::new(config))
            .await
            .map_err(|e| DbError::Connect(format!("connecting with TLS: {e}")))?;
    AsyncPgConnection::try_from_client_and_connection(client, connection)
        .await
        .map_err(|e| DbError::Connect(e.to_string()))
}

fn client_config(mode: SslMode, root_cert: Option<&str>) -> Result<ClientConfig, DbError> {
    use rustls_pki_types::pem::PemObject;
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut roots = RootCertStore::empty();
    match root_cert {
        Some(path) => {
            for cert in CertificateDer::pem_file_iter(path)
                .map_err(|e| DbError::Connect(format!("sslrootcert {path}: {e}")))?
            {
                let cert =
                    cert.map_err(|e| DbError::Connect(format!("sslrootcert {path}: {e}")))?;
                roots
                    .add(cert)
                    .map_err(|e| DbError::Connect(format!("sslrootcert {path}: {e}")))?;
            }
        }
        None if mode != SslMode::Require => {
            return Err(DbError::Connect(
                "sslmode verify-ca and verify-full need sslrootcert=<CA file> in the database URL"
                    .into(),
            ));
        }
        None => {}
    }
    let checked =
        WebPkiServerVerifier::builder_with_provider(Arc::new(roots), Arc::clone(&provider))
            .build()
            .ok();
    let algorithms = provider.signature_verification_algorithms;
    let verifier: Arc<dyn ServerCertVerifier> = match (mode, checked) {
        (SslMode::VerifyFull, Some(webpki)) => webpki,
        (SslMode::VerifyCa | SslMode::Require, Some(webpki)) => Arc::new(Relaxed {
            chain: Some(webpki),
            algorithms,
        }),
        (SslMode::Require, None) => Arc::new(Relaxed {
            chain: None,
            algorithms,
        }),
        _ => {
            return Err(DbError::Connect(
                "sslrootcert holds no usable certificate".into(),
            ));
        }
    };
    Ok(ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| DbError::Connect(e.to_string()))?
        .dangerous()
        .with_custom_certificate_verifier(verifier)
        .with_no_client_auth())
}

/// Less than verify-full: with a `chain` verifier (verify-ca, or require given a
/// root certificate) the chain is checked but not the name it carries; without
/// one (require alone, libpq's meaning) the certificate is not checked at all.
/// The handshake's signatures are always checked.
#[derive(Debug)]
struct Relaxed {
    chain: Option<Arc<WebPkiServerVerifier>>,
    algorithms: rustls::crypto::WebPkiSupportedAlgorithms,
}

impl ServerCertVerifier for Relaxed {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let Some(chain) = &self.chain else {
            return Ok(ServerCertVerified::assertion());
        };
        match chain.verify_server_cert(end_entity, intermediates, server_name, ocsp, now) {
            Err(rustls::Error::InvalidCertificate(
                rustls::CertificateError::NotValidForName
                | rustls::CertificateError::NotValidForNameContext { .. },
            )) => Ok(ServerCertVerified::assertion()),
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_url_says_the_mode_and_tokio_postgres_gets_what_it_knows() {
        let (mode, root, url) = tls_settings(
            "postgres://u:p@db.internal:5432/upload?sslmode=verify-full&sslrootcert=/etc/ca.pem&application_name=x",
        )
        .unwrap();
        assert_eq!(mode, SslMode::VerifyFull);
        assert_eq!(root.as_deref(), Some("/etc/ca.pem"));
        assert!(
            url.contains("sslmode=require") && url.contains("application_name=x"),
            "{url}"
        );
        assert!(
            !url.contains("sslrootcert") && !url.contains("verify-full"),
            "{url}"
        );
        let (mode, _, url) = tls_settings("postgres://127.0.0.1:5432/upload").unwrap();
        assert_eq!(mode, SslMode::Plain);
        assert!(!url.contains('?'), "{url}");
        assert!(tls_settings("postgres://h/db?sslmode=maybe").is_err());
        assert!(
            client_config(SslMode::VerifyFull, None).is_err(),
            "verify-full needs a root"
        );
    }
}
