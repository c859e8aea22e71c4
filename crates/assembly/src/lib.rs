#![doc = include_str!("../README.md")]
//!
//! Where things live: `parts` compares the store's parts with the signed ones;
//! `complete` records a completion the store has assembled.

mod complete;
mod parts;

pub use complete::{Completion, complete_if_assembled};
pub use parts::{PartsReport, compare_parts, inspect_parts, record_upload_progress};

/// A failure of the database or the store while assembling.
#[derive(Debug, thiserror::Error)]
pub enum AssemblyError {
    /// The database failed.
    #[error(transparent)]
    Db(#[from] upload_db::DbError),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] upload_storage::StoreError),
}
