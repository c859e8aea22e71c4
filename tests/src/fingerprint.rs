//! A fingerprint of everything a test's service keeps: a digest of every table's
//! rows (jobs included, workers' heartbeats left out) and a listing of every
//! object, unfinished multipart upload and stored part in the test's buckets. Two
//! fingerprints equal means a call stored, enqueued and changed nothing.

use std::collections::BTreeMap;

use diesel_async::RunQueryDsl;
use upload_storage::Bucket;

use crate::TestApp;

/// What the service keeps, at one moment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fingerprint {
    /// Table name → row count and a digest of its rows.
    tables: BTreeMap<String, String>,
    /// Bucket role → its objects, multipart uploads and their parts, one line each.
    store: BTreeMap<String, Vec<String>>,
}

impl Fingerprint {
    /// Panics, naming what differs, unless `after` equals this fingerprint.
    pub fn assert_unchanged(&self, after: &Fingerprint, case: &str) {
        let mut differences = Vec::new();
        for (table, digest) in &self.tables {
            if after.tables.get(table) != Some(digest) {
                differences.push(format!("table {table} changed"));
            }
        }
        for (bucket, lines) in &self.store {
            if after.store.get(bucket) != Some(lines) {
                differences.push(format!(
                    "bucket {bucket} changed: {:?} -> {:?}",
                    lines,
                    after.store.get(bucket)
                ));
            }
        }
        assert!(
            differences.is_empty(),
            "{case}: the call left a trace: {}",
            differences.join("; ")
        );
    }

    /// Rows in `table` (`public.uploads`, `apalis.jobs`, ...).
    pub fn rows(&self, table: &str) -> u64 {
        self.tables
            .get(table)
            .and_then(|d| d.split_once(' '))
            .and_then(|(n, _)| n.parse().ok())
            .unwrap_or_default()
    }
}

#[derive(diesel::QueryableByName)]
struct Text {
    #[diesel(sql_type = diesel::sql_types::Text)]
    value: String,
}

impl TestApp {
    /// The service's state now; see [`Fingerprint`].
    pub async fn fingerprint(&self) -> Fingerprint {
        let mut conn = self.db().await;
        let names: Vec<Text> = diesel::sql_query(
            "SELECT format('%I.%I', table_schema, table_name) AS value \
             FROM information_schema.tables \
             WHERE table_type = 'BASE TABLE' AND table_schema IN ('public', 'apalis') \
               AND table_name NOT IN ('workers', '_sqlx_migrations', '__diesel_schema_migrations')",
        )
        .load(&mut conn)
        .await
        .expect("listing tables");
        let mut tables = BTreeMap::new();
        for Text { value: table } in names {
            let digest: Vec<Text> = diesel::sql_query(format!(
                "SELECT count(*) || ' ' || md5(coalesce(string_agg(t::text, E'\\n' ORDER BY t::text), '')) \
                 AS value FROM {table} t"
            ))
            .load(&mut conn)
            .await
            .unwrap_or_else(|e| panic!("digesting {table}: {e}"));
            let digest = digest
                .into_iter()
                .next()
                .map(|t| t.value)
                .unwrap_or_default();
            tables.insert(table, digest);
        }
        let mut store = BTreeMap::new();
        for role in Bucket::ALL {
            store.insert(
                role.to_string(),
                self.store_listing(self.bucket(*role)).await,
            );
        }
        Fingerprint { tables, store }
    }

    /// Every object, unfinished multipart upload and stored part in `bucket`.
    async fn store_listing(&self, bucket: &str) -> Vec<String> {
        let client = self.store.client();
        let mut lines = Vec::new();
        let mut token = None;
        loop {
            let page = client
                .list_objects_v2()
                .bucket(bucket)
                .set_continuation_token(token.take())
                .send()
                .await
                .expect("listing objects");
            for o in page.contents() {
                lines.push(format!(
                    "object {} {} {}",
                    o.key().unwrap_or_default(),
                    o.size().unwrap_or_default(),
                    o.e_tag().unwrap_or_default()
                ));
            }
            match page.next_continuation_token() {
                Some(next) => token = Some(next.to_owned()),
                None => break,
            }
        }
        let uploads = client
            .list_multipart_uploads()
            .bucket(bucket)
            .send()
            .await
            .expect("listing multipart uploads");
        for u in uploads.uploads() {
            let (key, id) = (
                u.key().unwrap_or_default(),
                u.upload_id().unwrap_or_default(),
            );
            lines.push(format!("multipart {key} {id}"));
            let parts = client
                .list_parts()
                .bucket(bucket)
                .key(key)
                .upload_id(id)
                .send()
                .await
                .expect("listing parts");
            for p in parts.parts() {
                lines.push(format!(
                    "part {key} {} {} {}",
                    p.part_number().unwrap_or_default(),
                    p.size().unwrap_or_default(),
                    p.e_tag().unwrap_or_default()
                ));
            }
        }
        lines.sort();
        lines
    }
}
