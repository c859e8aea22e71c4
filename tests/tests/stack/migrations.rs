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
    // uploads and its eight companions, upload_events among them.
    assert_eq!(app.count(tables).await, 9);
    let views = "SELECT count(*) FROM information_schema.views WHERE table_schema = 'ops'";
    assert_eq!(app.count(views).await, 5, "the operators' views");
    let reverted = upload_db::revert_migrations(&app.database_url)
        .await
        .expect("revert");
    assert!(reverted >= 1);
    assert_eq!(
        app.count(tables).await,
        0,
        "down migrations drop every table"
    );
    assert_eq!(app.count(views).await, 0);
    upload_db::run_migrations(&app.database_url)
        .await
        .expect("re-apply");
    assert_eq!(app.count(tables).await, 9);
    assert_eq!(app.count(views).await, 5);
}
