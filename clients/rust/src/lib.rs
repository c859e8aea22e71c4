#![doc = include_str!("../README.md")]

//! Where things live: `transfer` sends parts (hash, sign, PUT, retry); `buffers` the
//! memory it holds; `flow` plans and finishes an upload; `state` the resume file;
//! `retry` backoff; `download` fetches a version.

mod buffers;
mod download;
mod flow;
mod retry;
mod state;
mod transfer;

use std::path::Path;

use base64::Engine;
pub use download::download;
pub use flow::PlannedUpload;
use md5::Digest;
pub use retry::Backoff;
pub use state::UploadState;
use tonic::metadata::MetadataValue;
use tonic::service::Interceptor;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::Channel;
pub use transfer::{Event, SendOptions, SendStats, part_range};
pub use upload_proto::v1 as pb;
use upload_proto::v1::item_service_client::ItemServiceClient;
use upload_proto::v1::upload_service_client::UploadServiceClient;

/// A client error, worded for the person running the upload.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The server refused a call.
    #[error("{}: {}", .0.code(), .0.message())]
    Rpc(#[from] tonic::Status),
    /// The server could not be reached.
    #[error("cannot reach the upload server: {}", causes(.0))]
    Connect(#[from] tonic::transport::Error),
    /// Reading the local file failed.
    #[error("cannot read the file: {0}")]
    Io(#[from] std::io::Error),
    /// The store refused or dropped a part after every retry.
    #[error("part {part} could not be sent: {reason}")]
    Part {
        /// The part number.
        part: u32,
        /// What went wrong last.
        reason: String,
    },
    /// The token is not usable as a header.
    #[error("the token contains characters that cannot be sent in a header")]
    BadToken,
    /// The local file is not the one the upload was started with.
    #[error("{0}")]
    FileChanged(String),
    /// The resume state cannot be used.
    #[error("{0}")]
    State(String),
    /// The upload cannot go on.
    #[error("{0}")]
    Upload(String),
}

/// An error and its causes, as one line.
fn causes(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(inner) = source {
        text.push_str(": ");
        text.push_str(&inner.to_string());
        source = inner.source();
    }
    text
}

/// Adds the bearer token to every call and, for a service, whom it acts for.
#[derive(Clone)]
pub struct Bearer {
    token: MetadataValue<tonic::metadata::Ascii>,
    act_for: Option<ActFor>,
}

/// The seller or buyer a service acts for, as its headers carry it.
#[derive(Clone)]
struct ActFor(Vec<(&'static str, MetadataValue<tonic::metadata::Ascii>)>);

/// Whom a service acts for: the subject, and where the service's delegation asks
/// for them, the subject's role (`seller` or `buyer`) and a seller's group.
#[derive(Debug, Clone, Copy, Default)]
pub struct ActingFor<'a> {
    /// The seller's or buyer's id.
    pub subject: &'a str,
    /// `seller` or `buyer`, for a service that may act for both.
    pub role: Option<&'a str>,
    /// `standard` or `premium`, for a service that may state a seller's group.
    pub group: Option<&'a str>,
}

/// The header in which a service names whom it acts for.
pub const ACT_FOR_HEADER: &str = "x-upload-act-for";
/// The header in which a service says whether it acts for a seller or a buyer.
pub const ACT_FOR_ROLE_HEADER: &str = "x-upload-act-for-role";
/// The header in which a service names that seller's group.
pub const ACT_FOR_GROUP_HEADER: &str = "x-upload-act-for-group";

impl Interceptor for Bearer {
    fn call(&mut self, mut req: tonic::Request<()>) -> Result<tonic::Request<()>, tonic::Status> {
        let metadata = req.metadata_mut();
        metadata.insert("authorization", self.token.clone());
        if let Some(ActFor(headers)) = &self.act_for {
            for (name, value) in headers {
                metadata.insert(*name, value.clone());
            }
        }
        Ok(req)
    }
}

/// An HTTP client for the store keeping up to `idle` connections per host.
fn store_client(idle: usize) -> Result<reqwest::Client, ClientError> {
    reqwest::Client::builder()
        .pool_max_idle_per_host(idle)
        .connect_timeout(std::time::Duration::from_secs(10))
        .read_timeout(std::time::Duration::from_secs(120))
        .build()
        .map_err(|e| ClientError::Part {
            part: 0,
            reason: e.to_string(),
        })
}

/// The gRPC client with authentication.
pub type Api = UploadServiceClient<InterceptedService<Channel, Bearer>>;

/// The item service's gRPC client with authentication.
pub type Items = ItemServiceClient<InterceptedService<Channel, Bearer>>;

/// The upload service client.
#[derive(Clone)]
pub struct UploadClient {
    api: Api,
    items: Items,
    http: reqwest::Client,
    /// Keeps no idle connection: for a PUT that follows a store's refusal, whose
    /// connection the store may close right after answering (Garage does, without
    /// reading the body), so that PUT never meets a connection already closed.
    http_fresh: reqwest::Client,
    endpoint: String,
}

impl UploadClient {
    /// Connects to `endpoint` (for example `http://127.0.0.1:50051`) with a bearer token.
    /// An `https://` endpoint is trusted through the system's root certificates.
    pub async fn connect(endpoint: &str, token: &str) -> Result<Self, ClientError> {
        Self::connect_with(endpoint, token, None, None).await
    }

    /// Connects to an `https://` endpoint whose certificate a private CA issued
    /// (`ca_pem`, PEM), trusting that CA alone.
    pub async fn connect_trusting(
        endpoint: &str,
        token: &str,
        ca_pem: &[u8],
    ) -> Result<Self, ClientError> {
        Self::connect_with(endpoint, token, None, Some(ca_pem)).await
    }

    /// Connects with a service's token, acting for `acting_for`, as the service's
    /// scopes and delegation allow; an `https://` endpoint trusts `ca_pem` if
    /// given, else the system's roots.
    pub async fn connect_acting_for(
        endpoint: &str,
        token: &str,
        acting_for: ActingFor<'_>,
        ca_pem: Option<&[u8]>,
    ) -> Result<Self, ClientError> {
        let value = |text: &str| text.parse().map_err(|_| ClientError::BadToken);
        let mut headers = vec![(ACT_FOR_HEADER, value(acting_for.subject)?)];
        if let Some(role) = acting_for.role {
            headers.push((ACT_FOR_ROLE_HEADER, value(role)?));
        }
        if let Some(group) = acting_for.group {
            headers.push((ACT_FOR_GROUP_HEADER, value(group)?));
        }
        Self::connect_with(endpoint, token, Some(ActFor(headers)), ca_pem).await
    }

    async fn connect_with(
        endpoint: &str,
        token: &str,
        act_for: Option<ActFor>,
        ca_pem: Option<&[u8]>,
    ) -> Result<Self, ClientError> {
        let bad_endpoint = |why: String| {
            ClientError::Rpc(tonic::Status::invalid_argument(format!(
                "bad endpoint {endpoint:?}: {why}"
            )))
        };
        let mut builder =
            Channel::from_shared(endpoint.to_owned()).map_err(|e| bad_endpoint(e.to_string()))?;
        if endpoint.starts_with("https://") {
            let tls = tonic::transport::ClientTlsConfig::new();
            let tls = match ca_pem {
                Some(pem) => tls.ca_certificate(tonic::transport::Certificate::from_pem(pem)),
                None => tls.with_native_roots(),
            };
            builder = builder
                .tls_config(tls)
                .map_err(|e| bad_endpoint(e.to_string()))?;
        }
        let channel = builder.connect().await?;
        let value: MetadataValue<_> = format!("Bearer {token}")
            .parse()
            .map_err(|_| ClientError::BadToken)?;
        Ok(Self {
            api: UploadServiceClient::with_interceptor(
                channel.clone(),
                Bearer {
                    token: value.clone(),
                    act_for: act_for.clone(),
                },
            ),
            items: ItemServiceClient::with_interceptor(
                channel,
                Bearer {
                    token: value,
                    act_for,
                },
            ),
            endpoint: endpoint.to_owned(),
            http: store_client(32)?,
            http_fresh: store_client(0)?,
        })
    }

    /// The HTTP client for a PUT that must go on a new connection.
    pub(crate) fn http_fresh(&self) -> &reqwest::Client {
        &self.http_fresh
    }

    /// The server's address this client was connected to.
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    /// The HTTP client that talks to the store.
    pub fn http(&self) -> &reqwest::Client {
        &self.http
    }

    /// The raw gRPC client, for calls this type does not wrap.
    pub fn api(&self) -> Api {
        self.api.clone()
    }

    /// The raw item service client: submitting items, versions, downloads.
    pub fn items(&self) -> Items {
        self.items.clone()
    }

    /// Creates an upload for a local file.
    pub async fn create(
        &self,
        file_name: &str,
        size: u64,
        content_type: &str,
        part_size: Option<u64>,
    ) -> Result<pb::Upload, ClientError> {
        let res = self
            .api()
            .create_upload(pb::CreateUploadRequest {
                part_checksum: 0,
                file_name: file_name.to_owned(),
                size_bytes: size,
                content_type: content_type.to_owned(),
                part_size_bytes: part_size.unwrap_or(0),
                idempotency_key: String::new(),
            })
            .await?;
        res.into_inner().upload.ok_or_else(|| {
            ClientError::Rpc(tonic::Status::internal("CreateUpload returned no upload"))
        })
    }

    /// The part numbers the store does not hold yet, from the server's record.
    pub async fn missing_parts(&self, upload_id: &str) -> Result<Vec<u32>, ClientError> {
        let res = self
            .api()
            .list_uploaded_parts(pb::ListUploadedPartsRequest {
                upload_id: upload_id.to_owned(),
            })
            .await?;
        Ok(res.into_inner().missing_part_numbers)
    }

    /// Sends the given parts of `file` for `upload`, `concurrency` at a time, calling
    /// `on_part(number, bytes)` as each is stored. Memory is one part per slot plus two
    /// for hashing ahead.
    pub async fn send_parts(
        &self,
        upload: &pb::Upload,
        file: &Path,
        parts: &[u32],
        options: SendOptions,
        on_part: impl Fn(u32, u64) + Send + Sync + 'static,
    ) -> Result<SendStats, ClientError> {
        self.send_parts_observed(upload, file, parts, options, move |event| {
            if let Event::PartSent { part, bytes } = event {
                on_part(*part, *bytes);
            }
        })
        .await
    }

    /// Completes an upload.
    pub async fn complete(&self, upload_id: &str) -> Result<pb::Upload, ClientError> {
        let res = self
            .api()
            .complete_upload(pb::CompleteUploadRequest {
                upload_id: upload_id.to_owned(),
            })
            .await?;
        res.into_inner().upload.ok_or_else(|| {
            ClientError::Rpc(tonic::Status::internal("CompleteUpload returned no upload"))
        })
    }

    /// Follows an upload's progress until it settles.
    pub async fn watch(
        &self,
        upload_id: &str,
    ) -> Result<tonic::Streaming<pb::WatchProgressResponse>, ClientError> {
        Ok(self
            .api()
            .watch_progress(pb::WatchProgressRequest {
                upload_id: upload_id.to_owned(),
            })
            .await?
            .into_inner())
    }

    /// Creates an upload for `file` and sends every part; does not complete it.
    pub async fn start_file(
        &self,
        file: &Path,
        content_type: &str,
        part_size: Option<u64>,
    ) -> Result<pb::Upload, ClientError> {
        let size = tokio::fs::metadata(file).await?.len();
        let name = file
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "file".to_owned());
        self.create(&name, size, content_type, part_size).await
    }

    /// Sends whatever the store still lacks of `upload`'s parts, as recorded by the
    /// server: after a crash or a network error, nothing already stored is sent again.
    pub async fn resume(
        &self,
        upload: &pb::Upload,
        file: &Path,
        options: SendOptions,
        on_part: impl Fn(u32, u64) + Send + Sync + 'static,
    ) -> Result<SendStats, ClientError> {
        let missing = self.missing_parts(&upload.upload_id).await?;
        self.send_parts(upload, file, &missing, options, on_part)
            .await
    }

    /// Aborts an unfinished upload: the store drops its parts.
    pub async fn abort(&self, upload_id: &str) -> Result<pb::Upload, ClientError> {
        let res = self
            .api()
            .abort_upload(pb::AbortUploadRequest {
                upload_id: upload_id.to_owned(),
            })
            .await?;
        res.into_inner().upload.ok_or_else(|| {
            ClientError::Rpc(tonic::Status::internal("AbortUpload returned no upload"))
        })
    }

    /// The upload's current record.
    pub async fn get(&self, upload_id: &str) -> Result<pb::GetUploadResponse, ClientError> {
        self.get_upload(upload_id, false).await
    }

    /// The upload's current record and every change it went through, oldest first.
    pub async fn history(&self, upload_id: &str) -> Result<pb::GetUploadResponse, ClientError> {
        self.get_upload(upload_id, true).await
    }

    async fn get_upload(
        &self,
        upload_id: &str,
        include_history: bool,
    ) -> Result<pb::GetUploadResponse, ClientError> {
        Ok(self
            .api()
            .get_upload(pb::GetUploadRequest {
                upload_id: upload_id.to_owned(),
                include_history,
            })
            .await?
            .into_inner())
    }
}

/// The base64 Content-MD5 of `data`, as a store expects it.
pub fn content_md5(data: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(md5::Md5::digest(data))
}
