//! Files the scanner cannot fully inspect, built in the test: decompression bombs
//! (a ZIP64 entry of 4 GiB, two ordinary entries of 2.25 GiB, 16 zips of 16 zips of
//! one 1 GiB leaf that clamd's cache of clean files would pass), archives nested 20
//! deep, a password-protected zip holding EICAR and an encrypted PDF. Each ends
//! `rejected` with code `unscannable` and a reason the seller can act on, is
//! notified once, and never reaches `ready` or the regular bucket. Where the
//! operator allows encrypted archives, a clean one is ready and its verdict says
//! what was not inspected; encrypted documents stay refused.

use std::time::Duration;

use upload_domain::{FailureCode, NotificationKind, SellerGroup, Uninspected};
use upload_e2e::{AppOptions, EICAR, TestApp, TestFile, archives, pb};

/// Uploads `bytes` as `name` and waits until it settles.
async fn upload_and_settle(
    app: &TestApp,
    bytes: &[u8],
    name: &str,
    content_type: &str,
) -> pb::Upload {
    let file = TestFile::from_bytes(name, bytes);
    let (client, upload) = app
        .upload_whole("seller-unscannable", &file, name, content_type)
        .await;
    app.wait_settled(&client, &upload.upload_id, Duration::from_secs(120))
        .await
}

async fn assert_unscannable(
    bytes: Vec<u8>,
    name: &str,
    content_type: &str,
    (reason, shown): (Uninspected, pb::Uninspected),
    words: &str,
) {
    let app = TestApp::spawn().await;
    let settled = upload_and_settle(&app, &bytes, name, content_type).await;
    let id = settled.upload_id.clone();
    assert_eq!(
        settled.state,
        pb::UploadState::Rejected as i32,
        "{settled:?}"
    );
    let failure = settled.failure.expect("the reason");
    assert_eq!(failure.code, FailureCode::Unscannable.as_str());
    assert!(failure.message.contains(words), "{failure:?}");
    assert_eq!(failure.message, reason.sentence());
    let scan = settled.scan.expect("the verdict");
    assert_eq!(
        scan.verdict,
        pb::ScanVerdict::Unscannable as i32,
        "{scan:?}"
    );
    assert_eq!(scan.uninspected, shown as i32, "{scan:?}");
    assert!(
        !scan.signature.is_empty(),
        "clamd's finding is kept: {scan:?}"
    );
    assert!(scan.engine_version.starts_with("ClamAV "), "{scan:?}");
    assert_eq!(scan.signature_version, 1, "the project's test database A");
    // Told once, as other rejections are; nothing processed, nothing stored.
    assert_eq!(
        app.count(&format!(
            "SELECT count(*) FROM notifications WHERE upload_id = '{id}' AND kind = '{}'
               AND details->>'code' = '{}' AND details->>'reason' = '{}'",
            NotificationKind::UploadRejected,
            FailureCode::Unscannable,
            reason
        ))
        .await,
        1
    );
    assert_eq!(app.count("SELECT count(*) FROM notifications").await, 1);
    assert_eq!(
        app.count("SELECT count(*) FROM apalis.jobs WHERE job_type IN ('upload.metadata', 'upload.preview')")
            .await,
        0
    );
    assert_eq!(
        app.keys(app.regular_bucket(), "").await,
        Vec::<String>::new()
    );
    // Whatever is asked of it, it is not ready: a submission is refused.
    let client = app
        .client("seller-unscannable", SellerGroup::Standard)
        .await;
    let refused = client
        .items()
        .submit_item(upload_e2e::submission(
            "late",
            "",
            pb::ItemKind::DigitalFile,
            "Late",
            &[(&id, "")],
        ))
        .await
        .expect_err("a rejected upload cannot be submitted");
    assert_eq!(
        refused.code(),
        tonic::Code::FailedPrecondition,
        "{refused:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bomb_of_copies_of_one_leaf_without_zip64_is_unscannable() {
    // 16 × 16 × 1 GiB from about 38 kB, no ZIP64: clamd reads the first leaf and
    // skips its copies as known clean, so only the scan's own walk sees 256 GiB.
    let bomb = archives::copies_bomb();
    println!("copies bomb: {} bytes for 256 GiB of leaves", bomb.len());
    assert!(bomb.len() < 64 * 1024, "{} bytes on the wire", bomb.len());
    assert!(
        !bomb.windows(4).any(|w| w == [0x50, 0x4b, 0x06, 0x06]),
        "no ZIP64 record"
    );
    assert_unscannable(
        bomb,
        "assets.zip",
        "application/zip",
        (Uninspected::TooLarge, pb::Uninspected::TooLarge),
        "expands too far",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_zip64_bomb_of_4_gib_is_unscannable() {
    let bomb = archives::zip64_bomb();
    assert!(
        bomb.len() < 8 * 1024 * 1024,
        "{} bytes on the wire",
        bomb.len()
    );
    assert_unscannable(
        bomb,
        "assets.zip",
        "application/zip",
        (
            Uninspected::UnreadableFormat,
            pb::Uninspected::UnreadableFormat,
        ),
        "ZIP64",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_classic_bomb_expanding_past_4_gib_is_unscannable() {
    assert_unscannable(
        archives::classic_bomb(),
        "textures.zip",
        "application/zip",
        (Uninspected::TooLarge, pb::Uninspected::TooLarge),
        "expands",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn archives_nested_20_deep_are_unscannable() {
    assert_unscannable(
        archives::nested_zips(20, b"the innermost file"),
        "nested.zip",
        "application/zip",
        (Uninspected::TooDeep, pb::Uninspected::TooDeep),
        "nested too deeply",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_password_protected_zip_holding_eicar_is_unscannable() {
    assert_unscannable(
        archives::zip_with("setup.com", EICAR, Some(b"hunter2")),
        "tools.zip",
        "application/zip",
        (
            Uninspected::EncryptedArchive,
            pb::Uninspected::EncryptedArchive,
        ),
        "upload it without a password",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_encrypted_pdf_is_unscannable() {
    assert_unscannable(
        archives::encrypted_pdf(),
        "manual.pdf",
        "application/pdf",
        (
            Uninspected::EncryptedDocument,
            pb::Uninspected::EncryptedDocument,
        ),
        "encrypted",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn where_encrypted_archives_are_allowed_a_clean_one_is_ready_and_says_it_was_not_inspected() {
    let app = TestApp::spawn_with(AppOptions {
        worker_env: vec![("UPLOAD_ALLOW_ENCRYPTED_ARCHIVES".into(), "true".into())],
        ..Default::default()
    })
    .await;
    let zip = archives::zip_with("notes.txt", b"nothing to see here", Some(b"hunter2"));
    let ready = upload_and_settle(&app, &zip, "notes.zip", "application/zip").await;
    assert_eq!(ready.state, pb::UploadState::Ready as i32, "{ready:?}");
    let scan = ready.scan.expect("the verdict");
    assert_eq!(scan.verdict, pb::ScanVerdict::Clean as i32, "{scan:?}");
    assert_eq!(
        scan.uninspected,
        pb::Uninspected::EncryptedArchive as i32,
        "the verdict says the inside was not inspected: {scan:?}"
    );
    assert!(scan.signature.contains("Encrypted"), "{scan:?}");
    assert!(
        scan.uninspected_reason.contains("password-protected"),
        "{scan:?}"
    );
    // Documents are not archives: an encrypted PDF is still refused.
    let pdf = upload_and_settle(
        &app,
        &archives::encrypted_pdf(),
        "manual.pdf",
        "application/pdf",
    )
    .await;
    assert_eq!(pdf.state, pb::UploadState::Rejected as i32, "{pdf:?}");
    assert_eq!(
        pdf.failure.expect("reason").code,
        FailureCode::Unscannable.as_str()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_ordinary_zip_and_a_shallow_nest_are_still_clean() {
    // The positive control: the same builders, within the limits, pass.
    let app = TestApp::spawn().await;
    for (bytes, name) in [
        (
            archives::zip_with("readme.txt", b"plain words", None),
            "plain.zip",
        ),
        (archives::nested_zips(5, b"five deep"), "nested5.zip"),
        (archives::nested_copies(), "textures.zip"),
    ] {
        let ready = upload_and_settle(&app, &bytes, name, "application/zip").await;
        assert_eq!(
            ready.state,
            pb::UploadState::Ready as i32,
            "{name}: {ready:?}"
        );
        let scan = ready.scan.expect("verdict");
        assert_eq!(scan.verdict, pb::ScanVerdict::Clean as i32);
        assert_eq!(scan.uninspected, pb::Uninspected::Unspecified as i32);
    }
}
