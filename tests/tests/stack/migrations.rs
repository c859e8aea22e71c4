//! The schema's migrations apply, revert completely, and apply again.

use upload_e2e::{AppOptions, TestApp};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn migrations_revert_cleanly_and_reapply() {
    let app = TestApp::spawn_with(AppOptions {
        worker: false,
        ..Default::default()
    })
    .await;
    let tables = "SELECT count(*) FROM information_schema.tables
                  WHERE table_schema = 'public'
                    AND (table_name LIKE 'upload%' OR table_name = 'notifications')";
    assert_eq!(app.count(tables).await, 8);
    let reverted = upload_db::revert_migrations(&app.database_url)
        .await
        .expect("revert");
    assert!(reverted >= 1);
    assert_eq!(
        app.count(tables).await,
        0,
        "down migrations drop every table"
    );
    upload_db::run_migrations(&app.database_url)
        .await
        .expect("re-apply");
    assert_eq!(app.count(tables).await, 8);
}
