use diesel_async::AsyncPgConnection;
use diesel_async::async_connection_wrapper::AsyncConnectionWrapper;
use diesel_migrations::{EmbeddedMigrations, MigrationHarness, embed_migrations};

use crate::DbError;

const MIGRATIONS: EmbeddedMigrations = embed_migrations!("../../migrations");

/// Applies the domain migrations and the job queue's own, both idempotently.
pub async fn run_migrations(url: &str) -> Result<(), DbError> {
    let pool = sqlx::postgres::PgPoolOptions::new()
        .max_connections(1)
        .connect(url)
        .await
        .map_err(|e| DbError::Connect(e.to_string()))?;
    apalis_postgres::PostgresStorage::setup(&pool)
        .await
        .map_err(|e| DbError::Migration(format!("job queue: {e}")))?;
    pool.close().await;

    let mut conn =
        AsyncConnectionWrapper::<AsyncPgConnection>::from(crate::connect::establish(url).await?);
    tokio::task::spawn_blocking(move || {
        conn.run_pending_migrations(MIGRATIONS)
            .map_err(|e| DbError::Migration(e.to_string()))?;
        Ok::<_, DbError>(())
    })
    .await
    .map_err(|e| DbError::Migration(e.to_string()))?
}

/// Reverts every domain migration (the job queue's tables are left alone). For
/// tests and for operators undoing a deployment.
pub async fn revert_migrations(url: &str) -> Result<usize, DbError> {
    let mut conn =
        AsyncConnectionWrapper::<AsyncPgConnection>::from(crate::connect::establish(url).await?);
    tokio::task::spawn_blocking(move || {
        conn.revert_all_migrations(MIGRATIONS)
            .map(|reverted| reverted.len())
            .map_err(|e| DbError::Migration(e.to_string()))
    })
    .await
    .map_err(|e| DbError::Migration(e.to_string()))?
}
