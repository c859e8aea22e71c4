#![doc = include_str!("../README.md")]

mod error;
pub mod items;
pub mod jobs;
mod migrate;
pub mod models;
pub mod notifications;
pub mod pipeline;
mod pool;
pub mod progress;
pub mod results;
pub mod schema;
pub mod sweep;
pub mod uploads;
pub mod versions;

pub use diesel_async::AsyncPgConnection;
pub use error::DbError;
pub use migrate::{revert_migrations, run_migrations};
pub use pool::{DbPool, connect_pool};

/// The channel every upload change is announced on; the payload is the upload id.
pub const UPLOAD_EVENTS_CHANNEL: &str = "upload_events";
