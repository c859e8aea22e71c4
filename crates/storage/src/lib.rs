#![doc = include_str!("../README.md")]

mod error;
mod keys;
mod lifecycle;
mod store;

pub use error::StoreError;
pub use keys::{Bucket, StorageKey};
pub use lifecycle::{LifecycleRules, apply_bucket_rules};
pub use store::{ObjectStream, SignedRequest, Store, StoredPart};
