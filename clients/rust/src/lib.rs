#![doc = include_str!("../README.md")]

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use base64::Engine;
use md5::Digest;
use tokio::io::{AsyncReadExt, AsyncSeekExt};
use tonic::metadata::MetadataValue;
use tonic::service::Interceptor;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::Channel;
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
    #[error("cannot reach the upload server: {0}")]
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
}

/// Adds the bearer token to every call.
#[derive(Clone)]
pub struct Bearer(MetadataValue<tonic::metadata::Ascii>);

impl Interceptor for Bearer {
    fn call(&mut self, mut req: tonic::Request<()>) -> Result<tonic::Request<()>, tonic::Status> {
        req.metadata_mut().insert("authorization", self.0.clone());
        Ok(req)
    }
}

/// The gRPC client with authentication.
pub type Api = UploadServiceClient<InterceptedService<Channel, Bearer>>;

/// The item service's gRPC client with authentication.
pub type Items = ItemServiceClient<InterceptedService<Channel, Bearer>>;

/// What sending parts did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct SendStats {
    /// Parts sent successfully.
    pub parts_sent: u64,
    /// Bytes of those parts.
    pub bytes_sent: u64,
    /// PUTs that failed and were tried again.
    pub retries: u64,
}

/// Options for sending parts.
#[derive(Debug, Clone, Copy)]
pub struct SendOptions {
    /// Parts in flight at once.
    pub concurrency: usize,
    /// Attempts per part before giving up.
    pub attempts: u32,
}

impl Default for SendOptions {
    fn default() -> Self {
        Self {
            concurrency: 4,
            attempts: 5,
        }
    }
}

/// The upload service client.
#[derive(Clone)]
pub struct UploadClient {
    api: Api,
    items: Items,
    http: reqwest::Client,
}

impl UploadClient {
    /// Connects to `endpoint` (for example `http://127.0.0.1:50051`) with a bearer token.
    pub async fn connect(endpoint: &str, token: &str) -> Result<Self, ClientError> {
        let channel = Channel::from_shared(endpoint.to_owned())
            .map_err(|_| {
                ClientError::Rpc(tonic::Status::invalid_argument(format!(
                    "bad endpoint {endpoint:?}"
                )))
            })?
            .connect()
            .await?;
        let value: MetadataValue<_> = format!("Bearer {token}")
            .parse()
            .map_err(|_| ClientError::BadToken)?;
        Ok(Self {
            api: UploadServiceClient::with_interceptor(channel.clone(), Bearer(value.clone())),
            items: ItemServiceClient::with_interceptor(channel, Bearer(value)),
            http: reqwest::Client::builder()
                .pool_max_idle_per_host(32)
                .build()
                .map_err(|e| ClientError::Part {
                    part: 0,
                    reason: e.to_string(),
                })?,
        })
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
                file_name: file_name.to_owned(),
                size_bytes: size,
                content_type: content_type.to_owned(),
                part_size_bytes: part_size.unwrap_or(0),
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

    /// Sends the given parts of `file` for `upload`, `concurrency` at a time. Each part
    /// is read, hashed, signed and PUT; memory is one part per slot.
    pub async fn send_parts(
        &self,
        upload: &pb::Upload,
        file: &Path,
        parts: &[u32],
        options: SendOptions,
        on_part: impl Fn(u32, u64) + Send + Sync + 'static,
    ) -> Result<SendStats, ClientError> {
        let queue = Arc::new(std::sync::Mutex::new(std::collections::VecDeque::from(
            parts.to_vec(),
        )));
        let retries = Arc::new(AtomicU64::new(0));
        let on_part = Arc::new(on_part);
        let mut slots = tokio::task::JoinSet::new();
        for _ in 0..options.concurrency.max(1) {
            let queue = Arc::clone(&queue);
            let retries = Arc::clone(&retries);
            let on_part = Arc::clone(&on_part);
            let client = self.clone();
            let upload = upload.clone();
            let file = file.to_owned();
            slots.spawn(async move {
                let mut sent = SendStats::default();
                let mut handle = tokio::fs::File::open(&file).await?;
                loop {
                    let next = queue
                        .lock()
                        .unwrap_or_else(std::sync::PoisonError::into_inner)
                        .pop_front();
                    let Some(number) = next else { break };
                    let bytes = client
                        .send_part(&upload, &mut handle, number, options.attempts, &retries)
                        .await?;
                    on_part(number, bytes);
                    sent.parts_sent += 1;
                    sent.bytes_sent += bytes;
                }
                Ok::<_, ClientError>(sent)
            });
        }
        let mut total = SendStats::default();
        while let Some(joined) = slots.join_next().await {
            let stats = joined.map_err(|e| ClientError::Part {
                part: 0,
                reason: e.to_string(),
            })??;
            total.parts_sent += stats.parts_sent;
            total.bytes_sent += stats.bytes_sent;
        }
        total.retries = retries.load(Ordering::Relaxed);
        Ok(total)
    }

    async fn send_part(
        &self,
        upload: &pb::Upload,
        file: &mut tokio::fs::File,
        number: u32,
        attempts: u32,
        retries: &AtomicU64,
    ) -> Result<u64, ClientError> {
        if number == 0 || number > upload.part_count {
            return Err(ClientError::Part {
                part: number,
                reason: format!("this upload has parts 1 to {}", upload.part_count),
            });
        }
        let offset = u64::from(number - 1) * upload.part_size_bytes;
        let len = upload
            .part_size_bytes
            .min(upload.size_bytes.saturating_sub(offset));
        let mut body = vec![
            0u8;
            usize::try_from(len).map_err(|e| ClientError::Part {
                part: number,
                reason: e.to_string()
            })?
        ];
        file.seek(std::io::SeekFrom::Start(offset)).await?;
        file.read_exact(&mut body).await?;
        let body = bytes::Bytes::from(body);
        let md5 = {
            let body = body.clone();
            tokio::task::spawn_blocking(move || md5::Md5::digest(&body).to_vec())
                .await
                .map_err(|e| ClientError::Part {
                    part: number,
                    reason: e.to_string(),
                })?
        };
        let mut last_error = String::new();
        for attempt in 0..attempts.max(1) {
            if attempt > 0 {
                retries.fetch_add(1, Ordering::Relaxed);
                let backoff = Duration::from_millis(200 * 2u64.pow(attempt.min(6)));
                let jitter = Duration::from_millis(u64::from(rand::random::<u16>() % 200));
                tracing::warn!(part = number, attempt, error = %last_error, "retrying part");
                tokio::time::sleep(backoff + jitter).await;
            }
            // Sign afresh on every attempt, so an expired URL is never reused.
            let signed = self
                .api()
                .sign_parts(pb::SignPartsRequest {
                    upload_id: upload.upload_id.clone(),
                    parts: vec![pb::PartToSign {
                        part_number: number,
                        content_md5: md5.clone(),
                        content_length: len,
                    }],
                })
                .await?
                .into_inner()
                .parts
                .pop()
                .ok_or_else(|| ClientError::Part {
                    part: number,
                    reason: "no signed URL returned".into(),
                })?;
            let mut req = self.http.put(&signed.url).body(body.clone());
            for h in &signed.headers {
                req = req.header(h.name.as_str(), h.value.as_str());
            }
            match req.send().await {
                Ok(res) if res.status().is_success() => return Ok(len),
                Ok(res) if res.status().is_server_error() => {
                    last_error = format!("store answered {}", res.status())
                }
                Ok(res) => {
                    let status = res.status();
                    let text = res.text().await.unwrap_or_default();
                    return Err(ClientError::Part {
                        part: number,
                        reason: format!("store refused it ({status}): {text}"),
                    });
                }
                Err(e) => last_error = e.to_string(),
            }
        }
        Err(ClientError::Part {
            part: number,
            reason: last_error,
        })
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

    /// The upload's current record.
    pub async fn get(&self, upload_id: &str) -> Result<pb::GetUploadResponse, ClientError> {
        Ok(self
            .api()
            .get_upload(pb::GetUploadRequest {
                upload_id: upload_id.to_owned(),
            })
            .await?
            .into_inner())
    }
}

/// The base64 Content-MD5 of `data`, as a store expects it.
pub fn content_md5(data: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(md5::Md5::digest(data))
}
