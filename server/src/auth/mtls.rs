//! Services that call with a client certificate instead of a token (mTLS): the
//! certificate the handshake verified names the service by its common name, and
//! the configuration gives that service its scopes. A certificate of a name not
//! configured identifies no one: the call then needs a token like any other.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use tonic::transport::server::{TcpConnectInfo, TlsConnectInfo};
use upload_domain::{Principal, Role, Scope, SellerGroup, SellerId};

use super::token::{TokenExpiry, Verified};

/// How long a certificate's identity holds a watch stream open before the client
/// must watch again (a token's expiry does that for token callers).
const SESSION: Duration = Duration::from_secs(24 * 3600);

/// The services known by their certificates, with their scopes.
#[derive(Debug, Clone, Default)]
pub struct MtlsServices(Arc<HashMap<String, Vec<Scope>>>);

impl MtlsServices {
    /// From the configured `(common name, scopes)` pairs.
    pub fn new(services: &[(String, Vec<Scope>)]) -> Self {
        Self(Arc::new(services.iter().cloned().collect()))
    }

    /// The service the connection's verified client certificate names, if any
    /// configured one.
    pub fn identify<B>(&self, req: &http::Request<B>) -> Option<Verified> {
        if self.0.is_empty() {
            return None;
        }
        let info = req.extensions().get::<TlsConnectInfo<TcpConnectInfo>>()?;
        let certs = info.peer_certs()?;
        let name = common_name(certs.first()?.as_ref())?;
        let scopes = self.0.get(&name)?.clone();
        Some(Verified {
            principal: Principal {
                role: Role::Service,
                subject: name.parse::<SellerId>().ok()?,
                scopes,
            },
            group: SellerGroup::Standard,
            expiry: TokenExpiry(SystemTime::now() + SESSION),
        })
    }
}

/// The common name in a certificate's subject.
fn common_name(der: &[u8]) -> Option<String> {
    use x509_cert::der::Decode;
    let cert = x509_cert::Certificate::from_der(der).ok()?;
    let subject = cert.tbs_certificate.subject.to_string();
    subject
        .split(',')
        .find_map(|part| part.trim().strip_prefix("CN="))
        .map(str::to_owned)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_common_name_is_read_from_a_client_certificate() {
        let ca = crate::tls::DevCa::generate("ca").unwrap();
        let (pem, _) = ca.client_cert("orders").unwrap();
        use rustls_pki_types::pem::PemObject;
        let der = rustls_pki_types::CertificateDer::from_pem_slice(pem.as_bytes()).unwrap();
        assert_eq!(common_name(der.as_ref()).as_deref(), Some("orders"));
        assert_eq!(common_name(b"not a certificate"), None);
    }
}
