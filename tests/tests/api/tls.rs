//! TLS on the gRPC port: clients speak `https://` trusting the CA that issued the
//! server's certificate; a plaintext client and one trusting nothing of the kind
//! are turned away; a renewed certificate written over the files is served to new
//! connections without a restart.

use std::sync::Arc;
use std::time::Duration;

use tokio_rustls::rustls;
use upload_client::UploadClient;
use upload_domain::SellerGroup;
use upload_e2e::{AppOptions, MIB, TestApp, pb, poll_until};
use upload_server::tls::DevCa;

/// The certificate a fresh TLS connection to `addr` is shown, trusting `ca_pem`.
async fn served_certificate(addr: &str, ca_pem: &str) -> Vec<u8> {
    use rustls_pki_types::pem::PemObject;
    let mut roots = rustls::RootCertStore::empty();
    for cert in rustls_pki_types::CertificateDer::pem_slice_iter(ca_pem.as_bytes()) {
        roots.add(cert.unwrap()).unwrap();
    }
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::aws_lc_rs::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    let name = rustls_pki_types::ServerName::try_from("127.0.0.1").unwrap();
    let tls = tokio_rustls::TlsConnector::from(Arc::new(config))
        .connect(name, tcp)
        .await
        .expect("a handshake trusting the CA");
    tls.get_ref().1.peer_certificates().unwrap()[0].to_vec()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clients_speak_https_and_a_renewed_certificate_is_served_without_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let (cert_path, key_path) = (dir.path().join("server.pem"), dir.path().join("key.pem"));
    let ca = DevCa::generate("upload test CA").unwrap();
    let (cert, key) = ca.server_cert(&["127.0.0.1"]).unwrap();
    std::fs::write(&cert_path, &cert).unwrap();
    std::fs::write(&key_path, &key).unwrap();
    let app = TestApp::spawn_with(AppOptions {
        worker: false,
        env: vec![
            ("UPLOAD_TLS_CERT".into(), cert_path.display().to_string()),
            ("UPLOAD_TLS_KEY".into(), key_path.display().to_string()),
            ("UPLOAD_TLS_RELOAD_SECS".into(), "1".into()),
        ],
        ..Default::default()
    })
    .await;
    assert!(app.endpoint.starts_with("https://"), "{}", app.endpoint);
    let token = app.token("seller-tls", SellerGroup::Standard);
    let ca_pem = ca.cert_pem();

    let client = UploadClient::connect_trusting(&app.endpoint, &token, ca_pem.as_bytes())
        .await
        .expect("an https client trusting the CA");
    let created = client
        .api()
        .create_upload(pb::CreateUploadRequest {
            file_name: "over-tls.bin".into(),
            size_bytes: MIB,
            content_type: "application/octet-stream".into(),
            ..Default::default()
        })
        .await
        .expect("CreateUpload over TLS");
    assert!(created.into_inner().upload.is_some());

    // Plaintext HTTP/2 to the TLS port gets no answer it can use.
    let plaintext = app.endpoint.replacen("https://", "http://", 1);
    let refused = match UploadClient::connect(&plaintext, &token).await {
        Err(_) => true,
        Ok(c) => c.get("01a2234b-0000-7000-8000-000000000000").await.is_err(),
    };
    assert!(refused, "a plaintext client was served");
    // Trusting only the system's roots, the private CA's certificate is refused.
    let untrusted = match UploadClient::connect(&app.endpoint, &token).await {
        Err(_) => true,
        Ok(c) => c.get("01a2234b-0000-7000-8000-000000000000").await.is_err(),
    };
    assert!(untrusted, "a certificate of an unknown CA was accepted");

    // A renewed certificate (a new key too) written over the files.
    let addr = app.endpoint.trim_start_matches("https://").to_owned();
    let before = served_certificate(&addr, &ca_pem).await;
    let (renewed, renewed_key) = ca.server_cert(&["127.0.0.1"]).unwrap();
    std::fs::write(&key_path, &renewed_key).unwrap();
    std::fs::write(&cert_path, &renewed).unwrap();
    let after = poll_until(
        "the renewed certificate served",
        Duration::from_secs(15),
        || async {
            let now = served_certificate(&addr, &ca_pem).await;
            (now != before, now)
        },
    )
    .await;
    assert_ne!(after, before);
    // The existing client keeps working; a new one uses the renewed certificate.
    let again = UploadClient::connect_trusting(&app.endpoint, &token, ca_pem.as_bytes())
        .await
        .expect("a new client after the renewal");
    again
        .api()
        .create_upload(pb::CreateUploadRequest {
            file_name: "after-renewal.bin".into(),
            size_bytes: MIB,
            content_type: "application/octet-stream".into(),
            ..Default::default()
        })
        .await
        .expect("CreateUpload after the renewal");
}

/// A channel to `endpoint` trusting `ca_pem`, presenting `identity` if given.
async fn mtls_channel(
    endpoint: &str,
    ca_pem: &str,
    identity: Option<(String, String)>,
) -> Result<tonic::transport::Channel, tonic::transport::Error> {
    use tonic::transport::{Certificate, ClientTlsConfig, Identity};
    let mut tls = ClientTlsConfig::new().ca_certificate(Certificate::from_pem(ca_pem));
    if let Some((cert, key)) = identity {
        tls = tls.identity(Identity::from_pem(cert, key));
    }
    tonic::transport::Channel::from_shared(endpoint.to_owned())
        .unwrap()
        .tls_config(tls)?
        .connect()
        .await
}

/// CreateUpload over `channel` with no token, acting for `seller`.
async fn create_as_certificate(
    channel: tonic::transport::Channel,
    seller: &str,
) -> Result<pb::Upload, tonic::Status> {
    let mut api = upload_proto::v1::upload_service_client::UploadServiceClient::new(channel);
    let mut request = tonic::Request::new(pb::CreateUploadRequest {
        file_name: "by-certificate.bin".into(),
        size_bytes: MIB,
        content_type: "application/octet-stream".into(),
        ..Default::default()
    });
    request
        .metadata_mut()
        .insert(upload_client::ACT_FOR_HEADER, seller.parse().unwrap());
    Ok(api
        .create_upload(request)
        .await?
        .into_inner()
        .upload
        .expect("an upload"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_a_client_ca_only_known_certificates_get_past_the_handshake() {
    let dir = tempfile::tempdir().unwrap();
    let ca = DevCa::generate("upload test CA").unwrap();
    let (cert, key) = ca.server_cert(&["127.0.0.1"]).unwrap();
    let write = |name: &str, text: &str| {
        let path = dir.path().join(name);
        std::fs::write(&path, text).unwrap();
        path.display().to_string()
    };
    let app = TestApp::spawn_with(AppOptions {
        worker: false,
        env: vec![
            ("UPLOAD_TLS_CERT".into(), write("server.pem", &cert)),
            ("UPLOAD_TLS_KEY".into(), write("server-key.pem", &key)),
            (
                "UPLOAD_TLS_CLIENT_CA".into(),
                write("ca.pem", &ca.cert_pem()),
            ),
            (
                "UPLOAD_MTLS_SERVICES".into(),
                "orders=uploads:write uploads:read".into(),
            ),
        ],
        ..Default::default()
    })
    .await;
    let ca_pem = ca.cert_pem();

    // No client certificate, or one another CA issued: refused at the handshake.
    let stranger_ca = DevCa::generate("another CA").unwrap();
    for (what, identity) in [
        ("no certificate", None),
        (
            "another CA's certificate",
            Some(stranger_ca.client_cert("orders").unwrap()),
        ),
    ] {
        let refused = match mtls_channel(&app.endpoint, &ca_pem, identity).await {
            Err(_) => true,
            Ok(channel) => create_as_certificate(channel, "seller-m").await.is_err(),
        };
        assert!(refused, "{what} got in");
    }

    // The orders service's certificate is its identity: no token, its scopes.
    let orders = mtls_channel(
        &app.endpoint,
        &ca_pem,
        Some(ca.client_cert("orders").unwrap()),
    )
    .await
    .expect("a known certificate");
    let created = create_as_certificate(orders, "seller-m")
        .await
        .expect("CreateUpload by the orders service's certificate");
    // The seller it acted for owns the upload (read through a gateway's
    // certificate, which every connection now needs, with the seller's token).
    let gateway = mtls_channel(
        &app.endpoint,
        &ca_pem,
        Some(ca.client_cert("gateway").unwrap()),
    )
    .await
    .expect("the gateway's certificate");
    let mut read = tonic::Request::new(pb::GetUploadRequest {
        upload_id: created.upload_id.clone(),
        include_history: false,
    });
    read.metadata_mut().insert(
        "authorization",
        format!("Bearer {}", app.token("seller-m", SellerGroup::Standard))
            .parse()
            .unwrap(),
    );
    let seen = upload_proto::v1::upload_service_client::UploadServiceClient::new(gateway)
        .get_upload(read)
        .await
        .expect("the seller reads the upload made for them")
        .into_inner();
    assert_eq!(seen.upload.map(|u| u.upload_id), Some(created.upload_id));
    // A known CA's certificate for a service not configured identifies no one.
    let unknown = mtls_channel(
        &app.endpoint,
        &ca_pem,
        Some(ca.client_cert("intruder").unwrap()),
    )
    .await
    .expect("the handshake: the CA knows it");
    let status = create_as_certificate(unknown, "seller-m")
        .await
        .expect_err("a service not configured");
    assert_eq!(status.code(), tonic::Code::Unauthenticated);
    // A certificate whose unit reads `x,CN=orders` (and that has no common name)
    // is not the orders service's: the identity is read from the structure.
    let forged = mtls_channel(
        &app.endpoint,
        &ca_pem,
        Some(
            ca.client_cert_with(upload_server::tls::CertSubject {
                unit: Some("x,CN=orders"),
                ..Default::default()
            })
            .unwrap(),
        ),
    )
    .await
    .expect("the handshake: the CA knows it");
    let status = create_as_certificate(forged, "seller-m")
        .await
        .expect_err("a unit that names orders in its text");
    assert_eq!(status.code(), tonic::Code::Unauthenticated, "{status:?}");
}
