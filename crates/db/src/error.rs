/// A database failure.
#[derive(Debug, thiserror::Error)]
pub enum DbError {
    /// A query failed.
    #[error("database query failed: {0}")]
    Query(#[from] diesel::result::Error),
    /// No connection could be had from the pool.
    #[error("no database connection available: {0}")]
    Pool(String),
    /// Connecting failed.
    #[error("cannot connect to the database: {0}")]
    Connect(String),
    /// Migrations failed.
    #[error("database migration failed: {0}")]
    Migration(String),
    /// A stored value does not parse (a row written by a newer version, or by hand).
    #[error("stored value is invalid: {0}")]
    Corrupt(String),
}

impl From<diesel_async::pooled_connection::bb8::RunError> for DbError {
    fn from(e: diesel_async::pooled_connection::bb8::RunError) -> Self {
        DbError::Pool(e.to_string())
    }
}
