#![doc = include_str!("../README.md")]
//!
//! Where things live: `keys` makes every object key and the multipart handle;
//! `store` the S3 client and the upload-side operations; `part_signer` signs part
//! URLs; `content` the regular bucket's copies and downloads; `lifecycle` the
//! buckets' rules; `credentials` the access key both clients use; `observe` counts
//! and times every call the client makes.

mod content;
mod credentials;
mod error;
mod keys;
mod lifecycle;
mod observe;
mod part_signer;
mod store;

pub use content::{CopyMethod, ObjectHead, SHA256_METADATA, content_disposition};
pub use error::StoreError;
pub use keys::{MultipartUpload, StorageKey};
pub use lifecycle::{LifecycleRules, apply_bucket_rules};
pub use store::{ObjectChunks, ObjectStream, Reader, SignedRequest, Store, StoredPart};
pub use upload_domain::Bucket;
