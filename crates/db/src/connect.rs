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
    let verifier: Arc<dyn ServerCertVerifier> = match (mode, checked) {
        (SslMode::VerifyFull, Some(webpki)) => webpki,
        (SslMode::VerifyCa | SslMode::Require, Some(webpki)) => Arc::new(AnyName(webpki)),
        (SslMode::Require, None) => Arc::new(Unchecked(provider.clone())),
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

/// verify-ca: the chain is checked, the name it carries is not.
#[derive(Debug)]
struct AnyName(Arc<WebPkiServerVerifier>);

impl ServerCertVerifier for AnyName {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        match self
            .0
            .verify_server_cert(end_entity, intermediates, server_name, ocsp, now)
        {
            Err(rustls::Error::InvalidCertificate(rustls::CertificateError::NotValidForName))
            | Err(rustls::Error::InvalidCertificate(
                rustls::CertificateError::NotValidForNameContext { .. },
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
        self.0.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.supported_verify_schemes()
    }
}

/// require without a root certificate: encrypted, the certificate not checked
/// (libpq's meaning; use verify-full where the network is not trusted).
#[derive(Debug)]
struct Unchecked(Arc<rustls::crypto::CryptoProvider>);

impl ServerCertVerifier for Unchecked {
    fn verify_server_cert(
        &self,
        _: &CertificateDer<'_>,
        _: &[CertificateDer<'_>],
        _: &ServerName<'_>,
        _: &[u8],
        _: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
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
