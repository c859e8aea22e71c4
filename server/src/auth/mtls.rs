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
pub struct MtlsServices(Arc<HashMap<SellerId, Vec<Scope>>>);

impl MtlsServices {
    /// From the configured `(service name, scopes)` pairs.
    pub fn new(services: &[(SellerId, Vec<Scope>)]) -> Self {
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
        // A name that is no service name (a dotted DNS name, a URI) is no
        // configured service's: the configuration takes service names alone.
        let name: SellerId = identity(certs.first()?.as_ref())?.parse().ok()?;
        let scopes = self.0.get(&name)?.clone();
        Some(Verified {
            principal: Principal {
                role: Role::Service,
                subject: name,
                scopes,
            },
            group: SellerGroup::Standard,
            expiry: TokenExpiry(SystemTime::now() + SESSION),
        })
    }
}

/// The name a certificate gives its holder, read from its structure (never from
/// the subject's text, where an attribute's value may itself hold `,CN=`): the one
/// common name of its subject; with none, its one DNS name or URI among the subject
/// alternative names. Two common names, or several such alternative names and no
/// common name, name no one. Only a name that is a service name (a single DNS
/// label such as `orders`) can be a configured service's.
fn identity(der: &[u8]) -> Option<String> {
    use x509_cert::der::Decode;
    use x509_cert::der::oid::AssociatedOid;
    use x509_cert::ext::pkix::SubjectAltName;
    use x509_cert::ext::pkix::name::GeneralName;
    let cert = x509_cert::Certificate::from_der(der).ok()?;
    let tbs = &cert.tbs_certificate;
    let common_names = tbs
        .subject
        .0
        .iter()
        .flat_map(|rdn| rdn.0.iter())
        .filter(|attribute| attribute.oid == COMMON_NAME)
        .map(|attribute| text(&attribute.value))
        .collect::<Option<Vec<String>>>()?;
    match common_names.as_slice() {
        [one] => return Some(one.clone()),
        [] => {}
        _ => return None,
    }
    let san = tbs
        .extensions
        .iter()
        .flatten()
        .find(|e| e.extn_id == SubjectAltName::OID)?;
    let names = SubjectAltName::from_der(san.extn_value.as_bytes()).ok()?;
    let named: Vec<String> = names
        .0
        .iter()
        .filter_map(|name| match name {
            GeneralName::DnsName(s) | GeneralName::UniformResourceIdentifier(s) => {
                Some(s.as_str().to_owned())
            }
            _ => None,
        })
        .collect();
    match named.as_slice() {
        [one] => Some(one.clone()),
        _ => None,
    }
}

/// The `commonName` attribute type (2.5.4.3).
const COMMON_NAME: x509_cert::der::oid::ObjectIdentifier =
    x509_cert::der::oid::ObjectIdentifier::new_unwrap("2.5.4.3");

/// A directory string's text (UTF8String, PrintableString or IA5String).
fn text(value: &x509_cert::der::Any) -> Option<String> {
    use x509_cert::der::asn1::{Ia5StringRef, PrintableStringRef, Utf8StringRef};
    if let Ok(s) = value.decode_as::<Utf8StringRef<'_>>() {
        return Some(s.as_str().to_owned());
    }
    if let Ok(s) = value.decode_as::<PrintableStringRef<'_>>() {
        return Some(s.as_str().to_owned());
    }
    value
        .decode_as::<Ia5StringRef<'_>>()
        .ok()
        .map(|s| s.as_str().to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_identity_is_read_from_the_certificate_s_structure() {
        use crate::tls::CertSubject;
        use rustls_pki_types::pem::PemObject;
        let ca = crate::tls::DevCa::generate("ca").unwrap();
        let named = |subject: CertSubject<'_>| {
            let (pem, _) = ca.client_cert_with(subject).unwrap();
            let der = rustls_pki_types::CertificateDer::from_pem_slice(pem.as_bytes()).unwrap();
            identity(der.as_ref())
        };
        assert_eq!(
            named(CertSubject::named("orders")).as_deref(),
            Some("orders")
        );
        // A unit whose text reads like a common name is a unit, not a name.
        let forged = CertSubject {
            unit: Some("x,CN=orders"),
            ..CertSubject::default()
        };
        assert_eq!(named(forged), None);
        let forged_beside = CertSubject {
            common_name: Some("intruder"),
            unit: Some("x,CN=orders"),
            ..CertSubject::default()
        };
        assert_eq!(named(forged_beside).as_deref(), Some("intruder"));
        // No common name: the one DNS name or URI.
        let by_dns = CertSubject {
            alt_names: &["orders.internal"],
            ..CertSubject::default()
        };
        assert_eq!(named(by_dns).as_deref(), Some("orders.internal"));
        let by_label = CertSubject {
            alt_names: &["orders"],
            ..CertSubject::default()
        };
        assert_eq!(named(by_label).as_deref(), Some("orders"));
        let two = CertSubject {
            alt_names: &["a.internal", "b.internal"],
            ..CertSubject::default()
        };
        assert_eq!(named(two), None);
        assert_eq!(identity(b"not a certificate"), None);
    }
}
