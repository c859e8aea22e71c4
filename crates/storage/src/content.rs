//! The regular bucket's side of the store: content-addressed copies that carry
//! their SHA-256, part-by-part copies for objects too large for one CopyObject,
//! and download URLs named with the seller's file name.

use std::time::Duration;

use aws_sdk_s3::presigning::PresigningConfig;
use aws_sdk_s3::types::{CompletedMultipartUpload, CompletedPart, MetadataDirective};
use chrono::{DateTime, Utc};
use futures::{StreamExt, TryStreamExt};
use sha2::Digest;
use upload_domain::Sha256Digest;

use crate::{StorageKey, Store, StoreError};

/// The user-metadata entry a stored file carries its SHA-256 in, so that a later
/// copy to the same MD5 key can tell identical content from a collision.
pub const SHA256_METADATA: &str = "sha256";

/// Part copies in flight at once.
const PART_COPY_CONCURRENCY: usize = 4;

/// What the store says about an object without reading it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectHead {
    /// Its length.
    pub size: u64,
    /// The SHA-256 recorded in its metadata, when it was stored by this service.
    pub sha256: Option<Sha256Digest>,
    /// Its ETag without quotes (`<md5>` for one-piece objects, `<hash>-<parts>` for
    /// objects assembled from parts).
    pub etag: String,
}

/// How a copy was made.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CopyMethod {
    /// One CopyObject.
    Whole,
    /// UploadPartCopy in this many parts.
    Parts(u32),
}

impl Store {
    /// The object's size, recorded SHA-256 and ETag, or None when it does not exist.
    pub async fn head(&self, key: &StorageKey<'_>) -> Result<Option<ObjectHead>, StoreError> {
        match self
            .client()
            .head_object()
            .bucket(self.bucket_name(key.bucket()))
            .key(key.key())
            .send()
            .await
        {
            Ok(out) => Ok(Some(ObjectHead {
                size: out
                    .content_length()
                    .and_then(|l| u64::try_from(l).ok())
                    .unwrap_or(0),
                sha256: out
                    .metadata()
                    .and_then(|m| m.get(SHA256_METADATA))
                    .and_then(|v| v.parse().ok()),
                etag: out.e_tag().unwrap_or_default().trim_matches('"').to_owned(),
            })),
            Err(e) => match StoreError::from_sdk("HeadObject", e) {
                StoreError::NotFound(_) => Ok(None),
                other => Err(other),
            },
        }
    }

    /// The SHA-256 of an object's bytes, read as a stream (for an object whose
    /// metadata does not say).
    pub async fn sha256_of(&self, key: &StorageKey<'_>) -> Result<Sha256Digest, StoreError> {
        let mut body = self.read(key).await?;
        let mut sha = sha2::Sha256::new();
        while let Some(chunk) = body.next().await {
            sha.update(&chunk?);
        }
        let digest: [u8; 32] = sha.finalize().into();
        Ok(Sha256Digest::from_array(digest))
    }

    /// Copies `from` to `to` server side, recording `sha256` and `content_type`
    /// on the copy. Objects over the configured threshold (at most 5 GiB, S3's limit
    /// for CopyObject) are copied part by part.
    pub async fn copy_content(
        &self,
        from: &StorageKey<'_>,
        to: &StorageKey<'_>,
        size: u64,
        sha256: Sha256Digest,
        content_type: &str,
    ) -> Result<CopyMethod, StoreError> {
        if size > self.copy_threshold {
            let parts = self
                .copy_in_parts(from, to, size, self.copy_part, sha256, content_type)
                .await?;
            return Ok(CopyMethod::Parts(parts));
        }
        self.client()
            .copy_object()
            .copy_source(self.copy_source(from))
            .bucket(self.bucket_name(to.bucket()))
            .key(to.key())
            .metadata_directive(MetadataDirective::Replace)
            .metadata(SHA256_METADATA, sha256.to_hex())
            .content_type(content_type)
            .send()
            .await
            .map_err(|e| StoreError::from_sdk("CopyObject", e))?;
        Ok(CopyMethod::Whole)
    }

    /// Copies `from` (of `size` bytes) to `to` with UploadPartCopy in parts of
    /// `part_size` bytes, a few at a time; returns the number of parts. A failed
    /// copy aborts its multipart upload, leaving nothing at `to`.
    pub async fn copy_in_parts(
        &self,
        from: &StorageKey<'_>,
        to: &StorageKey<'_>,
        size: u64,
        part_size: u64,
        sha256: Sha256Digest,
        content_type: &str,
    ) -> Result<u32, StoreError> {
        if part_size == 0 || size == 0 {
            return Err(StoreError::Invalid(
                "a part-by-part copy needs a non-empty object and parts".into(),
            ));
        }
        let bucket = self.bucket_name(to.bucket()).to_owned();
        let key = to.key();
        let upload_id = self
            .client()
            .create_multipart_upload()
            .bucket(&bucket)
            .key(&key)
            .metadata(SHA256_METADATA, sha256.to_hex())
            .content_type(content_type)
            .send()
            .await
            .map_err(|e| StoreError::from_sdk("CreateMultipartUpload", e))?
            .upload_id
            .ok_or_else(|| {
                StoreError::Rejected("CreateMultipartUpload returned no upload id".into())
            })?;
        let source = self.copy_source(from);
        let count = size.div_ceil(part_size);
        let copied: Result<Vec<CompletedPart>, StoreError> = futures::stream::iter(0..count)
            .map(|index| {
                let (bucket, key, upload_id, source) = (&bucket, &key, &upload_id, &source);
                async move {
                    let start = index * part_size;
                    let end = (start + part_size).min(size) - 1;
                    let number =
                        i32::try_from(index + 1).map_err(|e| StoreError::Invalid(e.to_string()))?;
                    let out = self
                        .client()
                        .upload_part_copy()
                        .bucket(bucket)
                        .key(key)
                        .upload_id(upload_id)
                        .part_number(number)
                        .copy_source(source)
                        .copy_source_range(format!("bytes={start}-{end}"))
                        .send()
                        .await
                        .map_err(|e| StoreError::from_sdk("UploadPartCopy", e))?;
                    let etag = out
                        .copy_part_result()
                        .and_then(|r| r.e_tag())
                        .ok_or_else(|| {
                            StoreError::Rejected("UploadPartCopy returned no ETag".into())
                        })?;
                    Ok(CompletedPart::builder()
                        .part_number(number)
                        .e_tag(etag)
                        .build())
                }
            })
            .buffered(PART_COPY_CONCURRENCY)
            .try_collect()
            .await;
        let completed = match copied {
            Ok(parts) => self
                .client()
                .complete_multipart_upload()
                .bucket(&bucket)
                .key(&key)
                .upload_id(&upload_id)
                .multipart_upload(
                    CompletedMultipartUpload::builder()
                        .set_parts(Some(parts))
                        .build(),
                )
                .send()
                .await
                .map_err(|e| StoreError::from_sdk("CompleteMultipartUpload", e)),
            Err(e) => Err(e),
        };
        if let Err(e) = completed {
            let aborted = self
                .client()
                .abort_multipart_upload()
                .bucket(&bucket)
                .key(&key)
                .upload_id(&upload_id)
                .send()
                .await;
            if let Err(abort) = aborted {
                tracing::warn!(key, error = %StoreError::from_sdk("AbortMultipartUpload", abort), "could not abort a failed part copy; the bucket's lifecycle rule will");
            }
            return Err(e);
        }
        u32::try_from(count).map_err(|e| StoreError::Invalid(e.to_string()))
    }

    /// A short-lived GET URL that downloads the object as `file_name` with
    /// `content_type`, whatever its key.
    pub async fn presign_download(
        &self,
        key: &StorageKey<'_>,
        file_name: &str,
        content_type: &str,
        expires_in: Duration,
    ) -> Result<(String, DateTime<Utc>), StoreError> {
        let now = crate::store::signing_time();
        let config = PresigningConfig::builder()
            .start_time(now)
            .expires_in(expires_in)
            .build()
            .map_err(|e| StoreError::Invalid(e.to_string()))?;
        let presigned = self
            .signer(crate::Reader::Client)
            .get_object()
            .bucket(self.bucket_name(key.bucket()))
            .key(key.key())
            .response_content_disposition(content_disposition(file_name))
            .response_content_type(content_type)
            .presigned(config)
            .await
            .map_err(|e| StoreError::from_sdk("GetObject presign", e))?;
        Ok((
            presigned.uri().to_owned(),
            DateTime::<Utc>::from(now + expires_in),
        ))
    }

    fn copy_source(&self, from: &StorageKey<'_>) -> String {
        format!("{}/{}", self.bucket_name(from.bucket()), from.key())
    }
}

/// `attachment` with the name twice: an ASCII fallback for old clients and the
/// exact name percent-encoded as UTF-8 (RFC 6266, RFC 8187).
pub fn content_disposition(file_name: &str) -> String {
    let fallback: String = file_name
        .chars()
        .map(|c| {
            if (c.is_ascii_graphic() && c != '"' && c != '\\') || c == ' ' {
                c
            } else {
                '_'
            }
        })
        .collect();
    let mut encoded = String::with_capacity(file_name.len() * 3);
    for b in file_name.bytes() {
        if b.is_ascii_alphanumeric() || b"!#$&+-.^_`|~".contains(&b) {
            encoded.push(char::from(b));
        } else {
            encoded.push_str(&format!("%{b:02X}"));
        }
    }
    format!("attachment; filename=\"{fallback}\"; filename*=UTF-8''{encoded}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn download_names_survive_quotes_and_non_ascii() {
        assert_eq!(
            content_disposition("font pack.zip"),
            "attachment; filename=\"font pack.zip\"; filename*=UTF-8''font%20pack.zip"
        );
        assert_eq!(
            content_disposition("crème \"brûlée\".mp4"),
            "attachment; filename=\"cr_me _br_l_e_.mp4\"; filename*=UTF-8''cr%C3%A8me%20%22br%C3%BBl%C3%A9e%22.mp4"
        );
    }

    /// RFC 6266 with RFC 8187's `filename*`: whatever a name holds, the header is
    /// visible ASCII, the quoted fallback cannot be closed early, the extended value
    /// holds only attr-chars and %XX, and decoding it gives back the name exactly.
    #[test]
    fn any_name_makes_a_well_formed_header_that_decodes_back() {
        let names = [
            "a\"; filename=evil.exe",
            "a\\\"b",
            "line\r\nX-Injected: 1",
            "nul\0.bin",
            "100%25 real%.zip",
            "it's.mp4",
            "gpj.\u{202E}exe",
            "\u{2067}\u{200F}\u{FEFF}",
            "😀 emoji.mp4",
            "=?utf-8?B?ZXZpbC5leGU=?=",
            "tab\there",
            "",
            "日本語のファイル.pdf",
        ];
        for name in names {
            let header = content_disposition(name);
            assert!(
                header.bytes().all(|b| b == b' ' || b.is_ascii_graphic()),
                "{name:?}: {header:?}"
            );
            let (fallback, extended) = header
                .strip_prefix("attachment; filename=\"")
                .and_then(|rest| rest.split_once("\"; filename*=UTF-8''"))
                .unwrap_or_else(|| panic!("{name:?}: {header:?}"));
            assert!(!fallback.contains(['"', '\\']), "{name:?}: {fallback:?}");
            let mut decoded = Vec::new();
            let mut bytes = extended.bytes();
            while let Some(b) = bytes.next() {
                if b == b'%' {
                    let hex = [bytes.next().unwrap(), bytes.next().unwrap()];
                    let hex = std::str::from_utf8(&hex).unwrap();
                    decoded.push(u8::from_str_radix(hex, 16).unwrap());
                } else {
                    assert!(
                        b.is_ascii_alphanumeric() || b"!#$&+-.^_`|~".contains(&b),
                        "{name:?}: {extended:?}"
                    );
                    decoded.push(b);
                }
            }
            assert_eq!(decoded, name.as_bytes(), "{name:?}");
        }
    }
}
