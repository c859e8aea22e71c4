use diesel_async::AsyncPgConnection;
use diesel_async::pooled_connection::AsyncDieselConnectionManager;
use diesel_async::pooled_connection::bb8::Pool;

use crate::DbError;

/// A pool of async diesel connections.
pub type DbPool = Pool<AsyncPgConnection>;

/// Builds a pool of at most `size` connections to `url`.
pub async fn connect_pool(url: &str, size: u32) -> Result<DbPool, DbError> {
    let manager = AsyncDieselConnectionManager::<AsyncPgConnection>::new(url);
    Pool::builder()
        .max_size(size)
        .connection_timeout(std::time::Duration::from_secs(10))
        .build(manager)
        .await
        .map_err(|e| DbError::Connect(e.to_string()))
}
