#![doc = include_str!("../README.md")]
//!
//! Where things live: `models` the rows (typed at this edge) and `schema` the
//! tables; `uploads` guarded upload transitions and signed parts; `history` the
//! record of every change those transitions make; `ops` what an operator may do
//! (through the same transitions) and `inspect` what they read; `pipeline` the
//! steps that move an upload through processing; `snapshot` the one read of an
//! upload the API shows; `results` and `progress` what jobs record; `submit`,
//! `submissions`, `items`, `grants` and `versions` the item side; `jobs` queue
//! names and enqueueing; `notifications` what sellers are told; `sweep` what the
//! sweeper looks for; `rescan` the re-scans of the catalogue when signatures change;
//! `holds` stored content a later scan flagged, and an operator's word on it;
//! `connect` and `pool` open connections as the URL's `sslmode` asks.

/// Declares `pub async fn $name(conn, key) -> Result<Option<$row>, DbError>`: the
/// row of schema table `$table` (in scope) with that primary key, read as `$row`.
macro_rules! find_by_key {
    ($(#[$doc:meta])* $name:ident, $table:ident, $key:ty, $row:ty) => {
        $(#[$doc])*
        pub async fn $name(
            conn: &mut diesel_async::AsyncPgConnection,
            key: $key,
        ) -> Result<Option<$row>, $crate::DbError> {
            use diesel::prelude::*;
            use diesel_async::RunQueryDsl;
            Ok($table::table
                .find(key)
                .select(<$row>::as_select())
                .first(conn)
                .await
                .optional()?)
        }
    };
}

mod connect;
mod error;
pub mod grants;
pub mod history;
pub mod holds;
pub mod inspect;
pub mod items;
pub mod jobs;
mod migrate;
pub mod models;
pub mod notifications;
pub mod ops;
pub mod pipeline;
mod pool;
pub mod progress;
pub mod rescan;
pub mod results;
pub mod schema;
pub mod snapshot;
pub mod submissions;
pub mod submit;
pub mod sweep;
pub mod uploads;
pub mod versions;

pub use connect::establish;
pub use diesel_async::AsyncPgConnection;
pub use error::DbError;
pub use migrate::{revert_migrations, run_migrations};
pub use pool::{DbPool, connect_pool};

/// The channel every upload change is announced on; the payload is the upload id.
pub const UPLOAD_EVENTS_CHANNEL: &str = "upload_events";
