use diesel_async::AsyncPgConnection;
use diesel_async::pooled_connection::bb8::Pool;
use diesel_async::pooled_connection::{AsyncDieselConnectionManager, ManagerConfig};

use crate::DbError;

/// A pool of async diesel connections.
pub type DbPool = Pool<AsyncPgConnection>;

/// Builds a pool of at most `size` connections to `url`.
pub async fn connect_pool(url: &str, size: u32) -> Result<DbPool, DbError> {
    let mut config = ManagerConfig::default();
    // Every pooled connection is opened as the URL's sslmode asks.
    config.custom_setup = Box::new(|url| {
        Box::pin(async move {
            crate::connect::establish(url)
                .await
                .map_err(|e| diesel::ConnectionError::BadConnection(e.to_string()))
        })
    });
    let manager = AsyncDieselConnectionManager::<AsyncPgConnection>::new_with_config(url, config);
    Pool::builder()
        .max_size(size)
        .connection_timeout(std::time::Duration::from_secs(10))
        .build(manager)
        .await
        .map_err(|e| DbError::Connect(e.to_string()))
}
