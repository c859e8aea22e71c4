//! The local stack as tests see it: its environment file, and PostgreSQL
//! databases cloned per test from a template migrated once per schema version.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use anyhow::Context;
use diesel_async::{AsyncPgConnection, RunQueryDsl};

/// Where the local stack keeps its state: `UPLOAD_STACK_DIR`, or `target/stack`.
pub fn stack_dir() -> PathBuf {
    std::env::var("UPLOAD_STACK_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|_| Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/stack"))
}

/// The stack's environment, from the process or from the file the stack script writes.
pub fn stack_env() -> HashMap<String, String> {
    let file = stack_dir().join("stack.env");
    let text = std::fs::read_to_string(&file).unwrap_or_else(|_| {
        panic!(
            "{} not found: start the local stack first with `deploy/local/stack.sh up` (the README's test command does)",
            file.display()
        )
    });
    text.lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
        .collect()
}

/// The URL of database `name` on the server `admin_url` points at (its query,
/// `sslmode` and the like, kept).
pub(crate) fn db_url(admin_url: &str, name: &str) -> String {
    let (address, query) = match admin_url.split_once('?') {
        Some((address, query)) => (address, format!("?{query}")),
        None => (admin_url, String::new()),
    };
    let base = address.rsplit_once('/').map_or(address, |(b, _)| b);
    format!("{base}/{name}{query}")
}

/// A connection to `url`, as its `sslmode` asks.
pub(crate) async fn connect(url: &str) -> anyhow::Result<AsyncPgConnection> {
    upload_db::establish(url)
        .await
        .context("connecting to the test PostgreSQL")
}

/// Creates database `name` from the template of the current migrations; returns
/// its URL.
pub(crate) async fn create_database(admin_url: &str, name: &str) -> anyhow::Result<String> {
    let template = template(admin_url).await?;
    let mut conn = connect(admin_url).await?;
    diesel::sql_query(format!("CREATE DATABASE {name} TEMPLATE {template}"))
        .execute(&mut conn)
        .await?;
    Ok(db_url(admin_url, name))
}

/// Drops database `name`, whoever is still connected.
pub(crate) async fn drop_database(admin_url: &str, name: &str) {
    if let Ok(mut conn) = connect(admin_url).await {
        let _ = diesel::sql_query(format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
            .execute(&mut conn)
            .await;
    }
}

/// The template database for the current migrations, created once (under an
/// advisory lock, since tests run in parallel processes).
async fn template(admin_url: &str) -> anyhow::Result<String> {
    use std::hash::{Hash, Hasher};
    // Named after the migrations' contents, so an edited migration gets a new template.
    let mut h = std::collections::hash_map::DefaultHasher::new();
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../migrations");
    let mut files: Vec<PathBuf> = walk(&dir);
    files.sort();
    for f in files {
        f.file_name().hash(&mut h);
        std::fs::read(&f).unwrap_or_default().hash(&mut h);
    }
    let name = format!("upload_tmpl_{:016x}", h.finish());
    let mut conn = connect(admin_url).await?;
    diesel::sql_query("SELECT pg_advisory_lock(727274)")
        .execute(&mut conn)
        .await?;
    let result = async {
        #[derive(diesel::QueryableByName)]
        struct Found {
            #[diesel(sql_type = diesel::sql_types::Integer)]
            #[allow(dead_code)]
            one: i32,
        }
        let found: Vec<Found> =
            diesel::sql_query("SELECT 1 AS one FROM pg_database WHERE datname = $1")
                .bind::<diesel::sql_types::Text, _>(&name)
                .load(&mut conn)
                .await?;
        if found.is_empty() {
            let building = format!("{name}_building");
            diesel::sql_query(format!("DROP DATABASE IF EXISTS {building}"))
                .execute(&mut conn)
                .await?;
            diesel::sql_query(format!("CREATE DATABASE {building}"))
                .execute(&mut conn)
                .await?;
            upload_db::run_migrations(&db_url(admin_url, &building)).await?;
            diesel::sql_query(format!("ALTER DATABASE {building} RENAME TO {name}"))
                .execute(&mut conn)
                .await?;
        }
        Ok::<_, anyhow::Error>(())
    }
    .await;
    diesel::sql_query("SELECT pg_advisory_unlock(727274)")
        .execute(&mut conn)
        .await?;
    result.map(|()| name)
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    entries
        .filter_map(Result::ok)
        .flat_map(|e| {
            let path = e.path();
            if path.is_dir() {
                walk(&path)
            } else {
                vec![path]
            }
        })
        .collect()
}
