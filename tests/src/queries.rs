//! The test's database as tests read it: plain SQL, counts, waiting for a count,
//! and the first upload's row.

use std::time::Duration;

use diesel_async::{AsyncPgConnection, RunQueryDsl};

use crate::TestApp;
use crate::stack::connect;

impl TestApp {
    /// A raw database connection to the test's database.
    pub async fn db(&self) -> AsyncPgConnection {
        connect(&self.database_url)
            .await
            .expect("connecting to the test database")
    }

    /// The temp key and the store's multipart id of the test's first upload.
    pub async fn upload_keys(&self) -> (String, String) {
        use diesel::prelude::*;
        use upload_db::schema::uploads::dsl;
        let mut conn = self.db().await;
        diesel_async::RunQueryDsl::first(
            dsl::uploads
                .order(dsl::created_at)
                .select((dsl::temp_key, dsl::store_upload_id)),
            &mut conn,
        )
        .await
        .expect("an upload exists")
    }

    /// The test's first upload, as stored.
    pub async fn first_upload(&self) -> upload_db::models::UploadRow {
        use diesel::prelude::*;
        use upload_db::schema::uploads::dsl;
        let mut conn = self.db().await;
        diesel_async::RunQueryDsl::first(
            dsl::uploads
                .order(dsl::created_at)
                .select(upload_db::models::UploadRow::as_select()),
            &mut conn,
        )
        .await
        .expect("an upload exists")
    }

    /// Runs an SQL statement on the test's database.
    pub async fn execute(&self, statement: &str) {
        let mut conn = self.db().await;
        diesel::sql_query(statement)
            .execute(&mut conn)
            .await
            .unwrap_or_else(|e| panic!("statement {statement:?} failed: {e}"));
    }

    /// Waits until `sql` (a count) returns `expected`, or panics after `timeout`.
    pub async fn wait_count(&self, sql: &str, expected: i64, timeout: Duration) {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let n = self.count(sql).await;
            if n == expected {
                return;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "{sql} gave {n}, expected {expected}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Runs a query returning one bigint (`SELECT count(*) ...`).
    pub async fn count(&self, sql: &str) -> i64 {
        #[derive(diesel::QueryableByName)]
        struct N {
            #[diesel(sql_type = diesel::sql_types::BigInt)]
            n: i64,
        }
        let mut conn = self.db().await;
        let rows: Vec<N> = diesel::sql_query(format!("SELECT ({sql})::bigint AS n"))
            .load(&mut conn)
            .await
            .unwrap_or_else(|e| panic!("query {sql:?} failed: {e}"));
        <[N]>::first(&rows).map(|r| r.n).unwrap_or_default()
    }
}
