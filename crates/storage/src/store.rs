use std::time::{Duration, SystemTime};

use aws_sdk_s3::Client;
use aws_sdk_s3::config::retry::RetryConfig;
use aws_sdk_s3::config::timeout::TimeoutConfig;
use aws_sdk_s3::config::{
    BehaviorVersion, Region, RequestChecksumCalculation, ResponseChecksumValidation,
};
use aws_sdk_s3::presigning::PresigningConfig;
use aws_sdk_s3::types::{ChecksumAlgorithm, CompletedMultipartUpload, CompletedPart};
use base64::Engine;
use chrono::{DateTime, Utc};
use upload_config::StoreConfig;
use upload_domain::{PartChecksum, PartNumber, PartPin, Sha256Digest};

use crate::credentials::credentials;
use crate::part_signer::{PartSigner, PartToSign, PinHeader};
use crate::{Bucket, MultipartUpload, StorageKey, StoreError};

/// A streaming object body, as the SDK gives it.
pub type ObjectStream = aws_sdk_s3::primitives::ByteStream;

/// An object's body as chunks, each within the read time-out of the last.
pub type ObjectChunks =
    std::pin::Pin<Box<dyn futures::Stream<Item = Result<bytes::Bytes, StoreError>> + Send>>;

/// A presigned HTTP request a client sends straight to the store.
#[derive(Debug, Clone)]
pub struct SignedRequest {
    /// The HTTP method.
    pub method: String,
    /// The full URL, signature included.
    pub url: String,
    /// Headers that are part of the signature and must be sent as given.
    pub headers: Vec<(String, String)>,
    /// When the URL stops working.
    pub expires_at: DateTime<Utc>,
}

/// Who will use a presigned URL, which decides the address it is signed for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reader {
    /// The server or a worker, at `UPLOAD_S3_ENDPOINT`.
    Service,
    /// A seller's client, at `UPLOAD_S3_PUBLIC_ENDPOINT`.
    Client,
}

/// A part the store holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredPart {
    /// The part number.
    pub part_number: u32,
    /// Its length.
    pub size: u64,
    /// Its ETag without quotes (the hex MD5 of its body).
    pub etag: String,
    /// The SHA-256 the store verified and kept, for an upload created for SHA-256.
    pub checksum_sha256: Option<Sha256Digest>,
}

/// The object store, with the service's three buckets.
#[derive(Debug, Clone)]
pub struct Store {
    client: Client,
    /// Signs the GET URLs sellers' clients use (previews, downloads), for the
    /// store's public address.
    public: Client,
    /// Signs part uploads into the temp bucket, for the public address.
    part_signer: PartSigner,
    temp: String,
    quarantine: String,
    regular: String,
    pub(crate) copy_threshold: u64,
    pub(crate) copy_part: u64,
    read_timeout: Duration,
    etag_is_md5: bool,
}

impl Store {
    /// Builds a client from configuration. No request is made.
    pub fn new(cfg: &StoreConfig) -> Self {
        let credentials = credentials(cfg);
        let mut builder = aws_sdk_s3::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new(cfg.region.clone()))
            .credentials_provider(credentials)
            .force_path_style(cfg.path_style)
            // Checksums only where S3 requires them: a presigned part must carry no
            // header beyond the MD5 and length the client is told to send.
            .request_checksum_calculation(RequestChecksumCalculation::WhenRequired)
            .response_checksum_validation(ResponseChecksumValidation::WhenRequired)
            // A store that does not answer is a failure, not a wait; the SDK retries
            // what retrying can fix (5xx, throttling, dropped connections, time-outs)
            // with exponential backoff and jitter.
            .timeout_config(
                TimeoutConfig::builder()
                    .connect_timeout(cfg.connect_timeout)
                    .read_timeout(cfg.read_timeout)
                    .build(),
            )
            .retry_config(RetryConfig::standard().with_max_attempts(cfg.max_attempts));
        let mut public = builder.clone();
        if let Some(endpoint) = &cfg.endpoint {
            builder = builder.endpoint_url(endpoint);
        }
        if let Some(endpoint) = &cfg.public_endpoint {
            public = public.endpoint_url(endpoint);
        }
        Self {
            client: Client::from_conf(builder.build()),
            public: Client::from_conf(public.build()),
            part_signer: PartSigner::new(cfg, &cfg.temp_bucket),
            temp: cfg.temp_bucket.clone(),
            quarantine: cfg.quarantine_bucket.clone(),
            regular: cfg.regular_bucket.clone(),
            copy_threshold: cfg.copy_threshold_bytes,
            copy_part: cfg.copy_part_bytes,
            read_timeout: cfg.read_timeout,
            etag_is_md5: cfg.etag_is_md5,
        }
    }

    /// The same store, its every call counted and timed in `calls` (see
    /// `observe`). The client that signs sellers' URLs makes no calls and is left
    /// as it is.
    pub fn observed_by(mut self, calls: upload_telemetry::DependencyCalls) -> Self {
        let config = self
            .client
            .config()
            .to_builder()
            .interceptor(crate::observe::CallObserver(calls))
            .build();
        self.client = Client::from_conf(config);
        self
    }

    /// Whether a part's ETag is the MD5 of its body (`UPLOAD_S3_ETAG_IS_MD5`).
    pub fn etag_is_md5(&self) -> bool {
        self.etag_is_md5
    }

    /// The underlying client, for operations this type does not wrap.
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// The client that signs URLs for `reader`.
    pub(crate) fn signer(&self, reader: Reader) -> &Client {
        match reader {
            Reader::Service => &self.client,
            Reader::Client => &self.public,
        }
    }

    /// The bucket name for a role.
    pub fn bucket_name(&self, bucket: Bucket) -> &str {
        match bucket {
            Bucket::Temp => &self.temp,
            Bucket::Quarantine => &self.quarantine,
            Bucket::Regular => &self.regular,
        }
    }

    /// Starts a multipart upload; returns the store's upload id.
    /// Parts pinned by SHA-256 need an upload created for that algorithm (the
    /// store then refuses a part without the checksum, and lists each part's).
    pub async fn create_multipart(
        &self,
        key: &StorageKey<'_>,
        content_type: &str,
        checksum: PartChecksum,
    ) -> Result<String, StoreError> {
        let out = self
            .client
            .create_multipart_upload()
            .bucket(self.bucket_name(key.bucket()))
            .key(key.key())
            .content_type(content_type)
            .set_checksum_algorithm(match checksum {
                PartChecksum::Md5 => None,
                PartChecksum::Sha256 => Some(ChecksumAlgorithm::Sha256),
            })
            .send()
            .await
            .map_err(|e| StoreError::from_sdk("CreateMultipartUpload", e))?;
        out.upload_id.ok_or_else(|| {
            StoreError::Rejected("CreateMultipartUpload returned no upload id".into())
        })
    }

    /// Presigns the PUT of each part (number, pin, length) of `upload` with its
    /// digest (MD5 or SHA-256) and length signed in: a body that differs from the
    /// digest is refused by the store, and a URL works for no other part number,
    /// upload or key. Signed for the public address, in memory.
    pub fn presign_parts(
        &self,
        upload: &MultipartUpload<'_>,
        parts: &[(PartNumber, PartPin, u64)],
        expires_in: Duration,
    ) -> Result<Vec<SignedRequest>, StoreError> {
        let now = signing_time();
        let key = upload.key.key();
        let expires_at = DateTime::<Utc>::from(now + expires_in);
        parts
            .iter()
            .map(|(part, pin, length)| {
                let b64 = base64::engine::general_purpose::STANDARD;
                let digest = match pin {
                    PartPin::Md5(d) => b64.encode(d.as_bytes()),
                    PartPin::Sha256(d) => b64.encode(d.as_bytes()),
                };
                let signed = self.part_signer.sign(
                    &PartToSign {
                        key: &key,
                        store_upload_id: upload.store_upload_id,
                        part_number: part.get(),
                        checksum: match pin {
                            PartPin::Md5(_) => PinHeader::Md5(&digest),
                            PartPin::Sha256(_) => PinHeader::Sha256(&digest),
                        },
                        length: *length,
                    },
                    now,
                    expires_in,
                )?;
                Ok(SignedRequest {
                    method: "PUT".to_owned(),
                    url: signed.url,
                    headers: signed.headers,
                    expires_at,
                })
            })
            .collect()
    }

    /// Every part the store holds for a multipart upload, in part order.
    pub async fn list_parts(
        &self,
        upload: &MultipartUpload<'_>,
    ) -> Result<Vec<StoredPart>, StoreError> {
        let key = upload.key.key();
        let mut parts = Vec::new();
        let mut marker: Option<String> = None;
        loop {
            let out = self
                .client
                .list_parts()
                .bucket(self.bucket_name(upload.key.bucket()))
                .key(&key)
                .upload_id(upload.store_upload_id)
                .set_part_number_marker(marker.take())
                .send()
                .await
                .map_err(|e| StoreError::from_sdk("ListParts", e))?;
            for p in out.parts() {
                parts.push(StoredPart {
                    part_number: p
                        .part_number()
                        .and_then(|n| u32::try_from(n).ok())
                        .unwrap_or(0),
                    size: p.size().and_then(|s| u64::try_from(s).ok()).unwrap_or(0),
                    etag: p.e_tag().unwrap_or_default().trim_matches('"').to_owned(),
                    checksum_sha256: p.checksum_sha256().and_then(decode_sha256),
                });
            }
            match (out.is_truncated(), out.next_part_number_marker()) {
                (Some(true), Some(next)) => marker = Some(next.to_owned()),
                _ => break,
            }
        }
        parts.sort_by_key(|p| p.part_number);
        Ok(parts)
    }

    /// Assembles the object from the given parts.
    pub async fn complete_multipart(
        &self,
        upload: &MultipartUpload<'_>,
        parts: &[StoredPart],
    ) -> Result<(), StoreError> {
        let completed = CompletedMultipartUpload::builder()
            .set_parts(Some(
                parts
                    .iter()
                    .map(|p| {
                        CompletedPart::builder()
                            .part_number(i32::try_from(p.part_number).unwrap_or(i32::MAX))
                            .e_tag(format!("\"{}\"", p.etag))
                            .set_checksum_sha256(p.checksum_sha256.map(|d| {
                                base64::engine::general_purpose::STANDARD.encode(d.as_bytes())
                            }))
                            .build()
                    })
                    .collect(),
            ))
            .build();
        self.client
            .complete_multipart_upload()
            .bucket(self.bucket_name(upload.key.bucket()))
            .key(upload.key.key())
            .upload_id(upload.store_upload_id)
            .multipart_upload(completed)
            .send()
            .await
            .map_err(|e| StoreError::from_sdk("CompleteMultipartUpload", e))?;
        Ok(())
    }

    /// Aborts a multipart upload; an upload already gone counts as aborted.
    pub async fn abort_multipart(&self, upload: &MultipartUpload<'_>) -> Result<(), StoreError> {
        match self
            .client
            .abort_multipart_upload()
            .bucket(self.bucket_name(upload.key.bucket()))
            .key(upload.key.key())
            .upload_id(upload.store_upload_id)
            .send()
            .await
            .map_err(|e| StoreError::from_sdk("AbortMultipartUpload", e))
        {
            Ok(_) | Err(StoreError::NotFound(_)) => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// Whether the store answers for the temp bucket (HeadBucket): readiness.
    pub async fn reachable(&self) -> Result<(), StoreError> {
        self.client
            .head_bucket()
            .bucket(self.bucket_name(Bucket::Temp))
            .send()
            .await
            .map(|_| ())
            .map_err(|e| StoreError::from_sdk("HeadBucket", e))
    }

    /// The object's size, or None when it does not exist.
    pub async fn object_size(&self, key: &StorageKey<'_>) -> Result<Option<u64>, StoreError> {
        match self
            .client
            .head_object()
            .bucket(self.bucket_name(key.bucket()))
            .key(key.key())
            .send()
            .await
        {
            Ok(out) => Ok(out.content_length().and_then(|l| u64::try_from(l).ok())),
            Err(e) => match StoreError::from_sdk("HeadObject", e) {
                StoreError::NotFound(_) => Ok(None),
                other => Err(other),
            },
        }
    }

    /// Streams an object's body in the transport's chunks; nothing is buffered
    /// beyond them. A store that stays silent for the read time-out mid-body ends
    /// the stream with [`StoreError::Unavailable`].
    pub async fn read(&self, key: &StorageKey<'_>) -> Result<ObjectChunks, StoreError> {
        let out = self
            .client
            .get_object()
            .bucket(self.bucket_name(key.bucket()))
            .key(key.key())
            .send()
            .await
            .map_err(|e| StoreError::from_sdk("GetObject", e))?;
        let idle = self.read_timeout;
        Ok(Box::pin(futures::stream::unfold(
            Some(out.body),
            move |body| async move {
                let mut body = body?;
                match tokio::time::timeout(idle, body.next()).await {
                    Ok(Some(Ok(chunk))) => Some((Ok(chunk), Some(body))),
                    Ok(Some(Err(e))) => Some((
                        Err(StoreError::Unavailable(format!("GetObject body: {e}"))),
                        None,
                    )),
                    Ok(None) => None,
                    Err(_) => Some((
                        Err(StoreError::Unavailable(format!(
                            "GetObject body: the store sent nothing for {idle:?}"
                        ))),
                        None,
                    )),
                }
            },
        )))
    }

    /// Copies an object (server side, no bytes through us). Objects up to 5 GiB.
    pub async fn copy(&self, from: &StorageKey<'_>, to: &StorageKey<'_>) -> Result<(), StoreError> {
        self.client
            .copy_object()
            .copy_source(format!(
                "{}/{}",
                self.bucket_name(from.bucket()),
                from.key()
            ))
            .bucket(self.bucket_name(to.bucket()))
            .key(to.key())
            .send()
            .await
            .map_err(|e| StoreError::from_sdk("CopyObject", e))?;
        Ok(())
    }

    /// Deletes an object; deleting one that is already gone succeeds.
    pub async fn delete(&self, key: &StorageKey<'_>) -> Result<(), StoreError> {
        match self
            .client
            .delete_object()
            .bucket(self.bucket_name(key.bucket()))
            .key(key.key())
            .send()
            .await
            .map_err(|e| StoreError::from_sdk("DeleteObject", e))
        {
            Ok(_) | Err(StoreError::NotFound(_)) => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// Uploads a small local file (a preview) as one object.
    pub async fn put_file(
        &self,
        key: &StorageKey<'_>,
        path: &std::path::Path,
        content_type: &str,
    ) -> Result<u64, StoreError> {
        let body = ObjectStream::from_path(path)
            .await
            .map_err(|e| StoreError::Invalid(format!("reading {}: {e}", path.display())))?;
        let size = body.size_hint().0;
        self.client
            .put_object()
            .bucket(self.bucket_name(key.bucket()))
            .key(key.key())
            .content_type(content_type)
            .body(body)
            .send()
            .await
            .map_err(|e| StoreError::from_sdk("PutObject", e))?;
        Ok(size)
    }

    /// A presigned GET of an object, for a reader that speaks HTTP: ffmpeg in the
    /// worker (`Reader::Service`) or a seller's browser (`Reader::Client`).
    pub async fn presign_get(
        &self,
        key: &StorageKey<'_>,
        reader: Reader,
        expires_in: Duration,
    ) -> Result<String, StoreError> {
        let config = PresigningConfig::builder()
            .expires_in(expires_in)
            .build()
            .map_err(|e| StoreError::Invalid(e.to_string()))?;
        let presigned = self
            .signer(reader)
            .get_object()
            .bucket(self.bucket_name(key.bucket()))
            .key(key.key())
            .presigned(config)
            .await
            .map_err(|e| StoreError::from_sdk("GetObject presign", e))?;
        Ok(presigned.uri().to_owned())
    }
}

/// The time a URL is signed at: now, in whole seconds. A SigV4 date has no
/// fraction, so the store ends a URL `expires_in` after the whole second it was
/// signed in; an expiry told to clients from this time is the one the store
/// keeps, never up to a second later.
pub(crate) fn signing_time() -> SystemTime {
    let since_epoch = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or_default();
    SystemTime::UNIX_EPOCH + Duration::from_secs(since_epoch.as_secs())
}

/// A part's SHA-256 as ListParts gives it (base64 of the 32 bytes); anything else
/// reads as none, so the part matches no signed SHA-256.
fn decode_sha256(b64: &str) -> Option<Sha256Digest> {
    let bytes = base64::engine::general_purpose::STANDARD.decode(b64).ok()?;
    Sha256Digest::from_bytes(&bytes).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_signed_at_a_whole_second_never_later_than_now() {
        let before = SystemTime::now();
        let at = signing_time();
        let since = at.duration_since(SystemTime::UNIX_EPOCH).unwrap();
        assert_eq!(since.subsec_nanos(), 0);
        assert!(at <= before + Duration::from_secs(1));
        assert!(before.duration_since(at).unwrap_or_default() < Duration::from_secs(1));
    }
}
