#![doc = include_str!("../README.md")]

mod content;
mod error;
mod keys;
mod lifecycle;
mod part_signer;
mod store;

pub use content::{CopyMethod, ObjectHead, SHA256_METADATA, content_disposition};
pub use error::StoreError;
pub use keys::{Bucket, StorageKey};
pub use lifecycle::{LifecycleRules, apply_bucket_rules};
pub use store::{ObjectStream, Reader, SignedRequest, Store, StoredPart};
