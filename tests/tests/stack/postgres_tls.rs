//! PostgreSQL over TLS alone: a cluster whose pg_hba turns plain TCP away, the
//! service given `sslmode=verify-full` with the CA's certificate. The server's
//! pool and listener, the worker's pool, queue pool and job listener, and the
//! migrations all connect with TLS, and a file goes all the way to stored.

use upload_e2e::{AppOptions, MIB, PrivatePostgres, TestApp, TestFile, pb};
use upload_server::tls::DevCa;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_service_runs_on_a_database_that_takes_tls_connections_alone() {
    let ca = DevCa::generate("postgres test CA").unwrap();
    let pg = PrivatePostgres::start_tls_only(&ca);
    let url = pg.admin_url();
    assert!(url.contains("sslmode=verify-full"), "{url}");
    // Plain text is turned away, and so is a certificate checked against another CA.
    let plain = url.split('?').next().unwrap().to_owned();
    assert!(
        upload_db::establish(&plain).await.is_err(),
        "plain text got in"
    );
    let dir = tempfile::tempdir().unwrap();
    let stranger = dir.path().join("other-ca.pem");
    std::fs::write(&stranger, DevCa::generate("another CA").unwrap().cert_pem()).unwrap();
    let wrong_ca = format!(
        "{plain}?sslmode=verify-full&sslrootcert={}",
        stranger.display()
    );
    assert!(
        upload_db::establish(&wrong_ca).await.is_err(),
        "a certificate of an untrusted CA was accepted"
    );

    let app = TestApp::spawn_with(AppOptions {
        admin_database_url: Some(url),
        ..Default::default()
    })
    .await;
    let (_, ready, item) = app
        .stored_item(
            "seller-tls-db",
            &TestFile::random_zip(MIB),
            ("pack.zip", "application/zip"),
            "Over TLS",
        )
        .await;
    assert_eq!(ready.state, pb::UploadState::Ready as i32);
    assert_eq!(item.state, pb::SubmissionState::Stored as i32, "{item:?}");
    // Every connection to the test's database is encrypted, and there are some.
    let encrypted = |ssl: bool| {
        format!(
            "SELECT count(*) FROM pg_stat_ssl s JOIN pg_stat_activity a USING (pid) \
             WHERE a.datname = current_database() AND s.ssl = {ssl}"
        )
    };
    assert_eq!(app.count(&encrypted(false)).await, 0);
    let tls = app.count(&encrypted(true)).await;
    assert!(tls >= 3, "{tls} TLS connections");
    println!("postgres over TLS: {tls} encrypted connections, none plain");
}
