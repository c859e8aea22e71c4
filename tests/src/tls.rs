//! TLS for every test server: one CA per test process, its certificate for
//! 127.0.0.1, and clients that trust that CA. Tests run over TLS unless they ask
//! for plain text ([`AppOptions::plaintext`](crate::AppOptions), for the browser
//! page, which cannot be told to trust the CA).

use std::path::PathBuf;
use std::sync::OnceLock;

use upload_client::UploadClient;
use upload_server::tls::DevCa;

use crate::TestApp;

/// The process's test CA and the server certificate it issued, in files.
pub struct TestTls {
    /// The CA's certificate (PEM).
    pub ca_pem: String,
    /// The same, in a file (for the CLI's `--ca-cert`).
    pub ca_path: PathBuf,
    /// The server's certificate chain (UPLOAD_TLS_CERT).
    pub cert_path: PathBuf,
    /// Its key (UPLOAD_TLS_KEY).
    pub key_path: PathBuf,
}

/// The test CA of this process, made on first use.
pub fn test_tls() -> &'static TestTls {
    static TLS: OnceLock<TestTls> = OnceLock::new();
    TLS.get_or_init(|| {
        let dir = tempfile::Builder::new()
            .prefix("upload-test-tls-")
            .tempdir()
            .expect("a directory for the test CA")
            .keep();
        let ca = DevCa::generate("upload test CA").expect("a test CA");
        let (cert, key) = ca
            .server_cert(&["127.0.0.1", "localhost"])
            .expect("a server certificate");
        let write = |name: &str, text: &str| {
            let path = dir.join(name);
            std::fs::write(&path, text).expect("a TLS file");
            path
        };
        TestTls {
            ca_path: write("ca.pem", &ca.cert_pem()),
            cert_path: write("server.pem", &cert),
            key_path: write("server-key.pem", &key),
            ca_pem: ca.cert_pem(),
        }
    })
}

impl TestApp {
    /// The test CA, when this app's server speaks TLS with the harness's certificate.
    pub fn harness_ca(&self) -> Option<&'static str> {
        let tls = test_tls();
        self.config
            .tls
            .as_ref()
            .is_some_and(|t| t.cert == tls.cert_path)
            .then_some(tls.ca_pem.as_str())
    }

    /// A client of this app's server with `token`.
    pub async fn connect(&self, token: &str) -> UploadClient {
        self.connect_to(&self.endpoint, token).await
    }

    /// A client of `endpoint` (this app's server or a replica) with `token`.
    pub async fn connect_to(&self, endpoint: &str, token: &str) -> UploadClient {
        match self.harness_ca() {
            Some(ca) => UploadClient::connect_trusting(endpoint, token, ca.as_bytes()).await,
            None => UploadClient::connect(endpoint, token).await,
        }
        .expect("connecting to the test server")
    }

    /// A bare gRPC channel to this app's server, for raw clients.
    pub async fn channel(&self) -> tonic::transport::Channel {
        let mut builder =
            tonic::transport::Channel::from_shared(self.endpoint.clone()).expect("the endpoint");
        if let Some(ca) = self.harness_ca() {
            builder = builder
                .tls_config(
                    tonic::transport::ClientTlsConfig::new()
                        .ca_certificate(tonic::transport::Certificate::from_pem(ca)),
                )
                .expect("TLS settings");
        }
        builder
            .connect()
            .await
            .expect("connecting to the test server")
    }

    /// Calls `path` (any path, an RPC or not) on `channel` with an empty message
    /// and no token, as an outsider would; the code it is answered with.
    pub async fn call_path(channel: tonic::transport::Channel, path: &str) -> tonic::Code {
        let mut grpc = tonic::client::Grpc::new(channel);
        grpc.ready().await.expect("the channel is ready");
        let path: http::uri::PathAndQuery = path.parse().expect("a request path");
        let codec = tonic_prost::ProstCodec::<(), ()>::default();
        match grpc.unary(tonic::Request::new(()), path, codec).await {
            Ok(_) => tonic::Code::Ok,
            Err(status) => status.code(),
        }
    }

    /// An HTTP/1.1 client for gRPC-web calls to this app's server.
    pub fn http1(&self) -> reqwest::Client {
        let mut builder = reqwest::Client::builder().http1_only();
        if let Some(ca) = self.harness_ca() {
            builder = builder.add_root_certificate(
                reqwest::Certificate::from_pem(ca.as_bytes()).expect("the test CA"),
            );
        }
        builder.build().expect("an HTTP client")
    }

    /// The CLI's arguments that make it trust this app's server.
    pub fn cli_tls_args(&self) -> Vec<String> {
        match self.harness_ca() {
            Some(_) => vec!["--ca-cert".into(), test_tls().ca_path.display().to_string()],
            None => Vec::new(),
        }
    }
}
