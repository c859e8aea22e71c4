//! TLS on the gRPC port (rustls): the certificate chain and key are PEM files,
//! read again when either changes (looked at every few seconds), so a renewed
//! certificate is served to new connections without a restart; a file that does
//! not read keeps the certificate served until it does. Handshakes run on tasks
//! of their own, bounded in time, so a slow or silent client holds up no other.

use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::{Duration, SystemTime};

use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls::server::{ClientHello, ResolvesServerCert};
use tokio_rustls::rustls::sign::CertifiedKey;
use tokio_rustls::rustls::{self, ServerConfig};
use upload_config::TlsConfig;

/// The longest a client may take over its handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// A certificate and key as the files hold them now.
fn load(cert: &Path, key: &Path) -> Result<CertifiedKey, String> {
    let chain = CertificateDer::pem_file_iter(cert)
        .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
        .map_err(|e| format!("cannot read the certificates in {}: {e}", cert.display()))?;
    if chain.is_empty() {
        return Err(format!("{} holds no certificate", cert.display()));
    }
    let key_der = PrivateKeyDer::from_pem_file(key)
        .map_err(|e| format!("cannot read the private key in {}: {e}", key.display()))?;
    let signing = rustls::crypto::aws_lc_rs::sign::any_supported_type(&key_der)
        .map_err(|e| format!("the private key in {} is not usable: {e}", key.display()))?;
    let certified = CertifiedKey::new(chain, signing);
    certified.keys_match().map_err(|e| {
        format!(
            "{} and {} do not belong together: {e}",
            cert.display(),
            key.display()
        )
    })?;
    Ok(certified)
}

/// When a file last changed, if it can be read.
fn modified(path: &Path) -> Option<SystemTime> {
    std::fs::metadata(path).and_then(|m| m.modified()).ok()
}

/// Serves the certificate the files held when last read.
#[derive(Debug)]
struct Reloading {
    current: RwLock<Arc<CertifiedKey>>,
}

impl ResolvesServerCert for Reloading {
    fn resolve(&self, _: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(Arc::clone(
            &self.current.read().unwrap_or_else(|e| e.into_inner()),
        ))
    }
}

/// The acceptor for `tls`: the files are read now (failing when they cannot
/// be) and looked at again every `tls.reload` for as long as the server runs.
pub fn acceptor(tls: &TlsConfig) -> Result<TlsAcceptor, String> {
    let resolver = Arc::new(Reloading {
        current: RwLock::new(Arc::new(load(&tls.cert, &tls.key)?)),
    });
    let watched = Arc::downgrade(&resolver);
    let (cert, key, every): (PathBuf, PathBuf, Duration) =
        (tls.cert.clone(), tls.key.clone(), tls.reload);
    tokio::spawn(async move {
        let mut seen = (modified(&cert), modified(&key));
        loop {
            tokio::time::sleep(every).await;
            let Some(resolver) = watched.upgrade() else {
                return;
            };
            let now = (modified(&cert), modified(&key));
            if now == seen {
                continue;
            }
            match load(&cert, &key) {
                Ok(certified) => {
                    *resolver.current.write().unwrap_or_else(|e| e.into_inner()) =
                        Arc::new(certified);
                    seen = now;
                    tracing::info!(cert = %cert.display(), "TLS certificate reloaded");
                }
                // Perhaps half-written: tried again at the next look.
                Err(e) => {
                    tracing::warn!(error = %e, "TLS certificate not reloaded; serving the one held")
                }
            }
        }
    });
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let builder = ServerConfig::builder_with_provider(Arc::clone(&provider))
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?;
    let builder = match &tls.client_ca {
        None => builder.with_no_client_auth(),
        // mTLS: a client without a certificate this CA issued fails the handshake.
        Some(ca) => {
            let mut roots = rustls::RootCertStore::empty();
            let certs = CertificateDer::pem_file_iter(ca)
                .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
                .map_err(|e| format!("cannot read the client CA {}: {e}", ca.display()))?;
            for cert in certs {
                roots.add(cert).map_err(|e| e.to_string())?;
            }
            let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
                Arc::new(roots),
                provider,
            )
            .build()
            .map_err(|e| format!("the client CA {}: {e}", ca.display()))?;
            builder.with_client_cert_verifier(verifier)
        }
    };
    let mut config = builder.with_cert_resolver(resolver);
    // gRPC over HTTP/2; gRPC-web from browsers over HTTP/1.1 too.
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(TlsAcceptor::from(Arc::new(config)))
}

/// The connections `listener` accepts, each past its TLS handshake.
pub fn incoming(
    listener: TcpListener,
    acceptor: TlsAcceptor,
) -> tokio_stream::wrappers::ReceiverStream<
    Result<tokio_rustls::server::TlsStream<TcpStream>, std::io::Error>,
> {
    let (tx, rx) = tokio::sync::mpsc::channel(64);
    tokio::spawn(async move {
        loop {
            // The server gone (its incoming stream dropped), the port is let go.
            let accepted = tokio::select! {
                accepted = listener.accept() => accepted,
                () = tx.closed() => return,
            };
            let (tcp, peer) = match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    tracing::warn!(error = %e, "accepting a connection failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            };
            // Small unary calls must not wait on Nagle's algorithm.
            let _ = tcp.set_nodelay(true);
            let (acceptor, handed) = (acceptor.clone(), tx.clone());
            tokio::spawn(async move {
                match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await {
                    Ok(Ok(stream)) => {
                        let _ = handed.send(Ok(stream)).await;
                    }
                    Ok(Err(e)) => tracing::debug!(%peer, error = %e, "TLS handshake failed"),
                    Err(_) => tracing::debug!(%peer, "TLS handshake timed out"),
                }
            });
        }
    });
    tokio_stream::wrappers::ReceiverStream::new(rx)
}

/// A certificate authority of local development and of the tests: the CA the
/// local stack's demo and the TLS tests make, never one to deploy.
pub struct DevCa {
    issuer: rcgen::CertifiedIssuer<'static, rcgen::KeyPair>,
}

/// What a client certificate made by [`DevCa::client_cert_with`] says of its
/// holder.
#[derive(Debug, Clone, Copy, Default)]
pub struct CertSubject<'a> {
    /// The subject's common name.
    pub common_name: Option<&'a str>,
    /// The subject's organizational unit.
    pub unit: Option<&'a str>,
    /// DNS names as subject alternative names.
    pub alt_names: &'a [&'a str],
}

impl<'a> CertSubject<'a> {
    /// A subject of one common name.
    pub fn named(common_name: &'a str) -> Self {
        Self {
            common_name: Some(common_name),
            ..Self::default()
        }
    }
}

impl DevCa {
    /// A new CA named `name`.
    pub fn generate(name: &str) -> Result<Self, String> {
        let mut params =
            rcgen::CertificateParams::new(Vec::<String>::new()).map_err(|e| e.to_string())?;
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, name);
        params.key_usages = vec![
            rcgen::KeyUsagePurpose::KeyCertSign,
            rcgen::KeyUsagePurpose::CrlSign,
        ];
        let key = rcgen::KeyPair::generate().map_err(|e| e.to_string())?;
        let issuer = rcgen::CertifiedIssuer::self_signed(params, key).map_err(|e| e.to_string())?;
        Ok(Self { issuer })
    }

    /// The CA's certificate (PEM), the one clients trust.
    pub fn cert_pem(&self) -> String {
        self.issuer.pem()
    }

    /// A client certificate naming `common_name` (a service, for mTLS) signed by
    /// this CA: (certificate PEM, private key PEM).
    pub fn client_cert(&self, common_name: &str) -> Result<(String, String), String> {
        self.client_cert_with(CertSubject::named(common_name))
    }

    /// A client certificate for `subject`, signed by this CA: (certificate PEM,
    /// private key PEM). For tests of how an identity is read.
    pub fn client_cert_with(&self, subject: CertSubject<'_>) -> Result<(String, String), String> {
        let alt_names: Vec<String> = subject.alt_names.iter().map(|n| (*n).to_owned()).collect();
        let mut params = rcgen::CertificateParams::new(alt_names).map_err(|e| e.to_string())?;
        params.distinguished_name = rcgen::DistinguishedName::new();
        if let Some(unit) = subject.unit {
            params
                .distinguished_name
                .push(rcgen::DnType::OrganizationalUnitName, unit);
        }
        if let Some(common_name) = subject.common_name {
            params
                .distinguished_name
                .push(rcgen::DnType::CommonName, common_name);
        }
        params.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ClientAuth];
        let key = rcgen::KeyPair::generate().map_err(|e| e.to_string())?;
        let cert = params
            .signed_by(&key, &self.issuer)
            .map_err(|e| e.to_string())?;
        Ok((cert.pem(), key.serialize_pem()))
    }

    /// A server certificate for `names` (host names or IP addresses) signed by
    /// this CA: (certificate PEM, private key PEM).
    pub fn server_cert(&self, names: &[&str]) -> Result<(String, String), String> {
        let names: Vec<String> = names.iter().map(|n| (*n).to_owned()).collect();
        let mut params = rcgen::CertificateParams::new(names).map_err(|e| e.to_string())?;
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "upload-server");
        params.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ServerAuth];
        let key = rcgen::KeyPair::generate().map_err(|e| e.to_string())?;
        let cert = params
            .signed_by(&key, &self.issuer)
            .map_err(|e| e.to_string())?;
        Ok((cert.pem(), key.serialize_pem()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_dev_certificate_and_its_key_load_as_a_pair_and_a_foreign_key_does_not() {
        let dir = tempfile::tempdir().unwrap();
        let ca = DevCa::generate("test CA").unwrap();
        let (cert, key) = ca.server_cert(&["127.0.0.1", "localhost"]).unwrap();
        let (_, other_key) = ca.server_cert(&["127.0.0.1"]).unwrap();
        let path = |name: &str, text: &str| {
            let p = dir.path().join(name);
            std::fs::write(&p, text).unwrap();
            p
        };
        let (cert, key, other_key) = (
            path("cert.pem", &cert),
            path("key.pem", &key),
            path("other.pem", &other_key),
        );
        load(&cert, &key).expect("a matching pair");
        let err = load(&cert, &other_key).unwrap_err();
        assert!(err.contains("do not belong together"), "{err}");
        let err = load(&dir.path().join("missing.pem"), &key).unwrap_err();
        assert!(err.contains("missing.pem"), "{err}");
    }
}
