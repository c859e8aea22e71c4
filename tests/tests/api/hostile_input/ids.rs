//! Ids on every RPC that takes one: malformed, random (well-formed but naming
//! nothing) and another seller's. Malformed ids are INVALID_ARGUMENT naming the
//! field; the others are NOT_FOUND alike, so a caller cannot tell another
//! seller's upload or item from one that does not exist.

use tonic::Code;
use upload_e2e::{MIB, TestApp, TestFile, pb, submission};

use super::{Case, case, refuse_all};

/// An id's three hostile forms: (label, id, code, words the refusal must hold).
fn forms(field: &str, theirs: &str) -> Vec<(String, String, Code, Vec<String>)> {
    let random = uuid::Uuid::now_v7().to_string();
    vec![
        (
            format!("malformed {field} id"),
            "42; DROP TABLE uploads".to_owned(),
            Code::InvalidArgument,
            vec![format!("{field} id"), "not a valid id".to_owned()],
        ),
        (
            format!("random {field} id"),
            random.clone(),
            Code::NotFound,
            vec![random, "not found".to_owned()],
        ),
        (
            format!("another seller's {field} id"),
            theirs.to_owned(),
            Code::NotFound,
            vec![theirs.to_owned(), "not found".to_owned()],
        ),
    ]
}

fn words(w: &[String]) -> Vec<&str> {
    w.iter().map(String::as_str).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ids_that_are_malformed_random_or_another_sellers_reach_nothing() {
    let mut app = TestApp::spawn().await;
    let small = || TestFile::random_zip(MIB / 4);
    // Seller B: a stored item, a ready upload and an unfinished one.
    let (_, _, b_item) = app
        .stored_item(
            "seller-b",
            &small(),
            ("b.zip", "application/zip"),
            "B's pack",
        )
        .await;
    let b_file = b_item.files[0].file_id.clone();
    let (_, b_ready) = app
        .ready_upload("seller-b", &small(), "b2.zip", "application/zip")
        .await;
    let (_, b_open) = app
        .upload_parts("seller-b", &TestFile::random(6 * MIB), Some(&[1]))
        .await;
    // Seller A, the caller: an item of their own and a ready upload.
    let (a, _, a_item) = app
        .stored_item(
            "seller-a",
            &small(),
            ("a.zip", "application/zip"),
            "A's pack",
        )
        .await;
    let (_, a_ready) = app
        .ready_upload("seller-a", &small(), "a2.zip", "application/zip")
        .await;

    app.settle_and_stop_worker().await;

    let mut cases: Vec<Case> = Vec::new();
    let part = || pb::PartToSign {
        checksum_sha256: Vec::new(),
        part_number: 1,
        content_md5: vec![0; 16],
        content_length: 5 * MIB,
    };
    // Every upload RPC, and SubmitItem's upload_id, with each form of upload id.
    for (which, theirs) in [("", &b_open.upload_id), (" (ready)", &b_ready.upload_id)] {
        for (label, id, code, w) in forms("upload", theirs) {
            let label = format!("{label}{which}");
            let w = words(&w);
            let mut api = a.api();
            let req = pb::SignPartRequest {
                upload_id: id.clone(),
                part: Some(part()),
            };
            cases.push(case(format!("SignPart, {label}"), code, &w, async move {
                api.sign_part(req).await
            }));
            let mut api = a.api();
            let req = pb::SignPartsRequest {
                upload_id: id.clone(),
                parts: vec![part()],
            };
            cases.push(case(format!("SignParts, {label}"), code, &w, async move {
                api.sign_parts(req).await
            }));
            let mut api = a.api();
            let req = pb::ListUploadedPartsRequest {
                upload_id: id.clone(),
            };
            cases.push(case(
                format!("ListUploadedParts, {label}"),
                code,
                &w,
                async move { api.list_uploaded_parts(req).await },
            ));
            let mut api = a.api();
            let req = pb::CompleteUploadRequest {
                upload_id: id.clone(),
            };
            cases.push(case(
                format!("CompleteUpload, {label}"),
                code,
                &w,
                async move { api.complete_upload(req).await },
            ));
            let mut api = a.api();
            let req = pb::AbortUploadRequest {
                upload_id: id.clone(),
            };
            cases.push(case(
                format!("AbortUpload, {label}"),
                code,
                &w,
                async move { api.abort_upload(req).await },
            ));
            let mut api = a.api();
            let req = pb::GetUploadRequest {
                upload_id: id.clone(),
                include_history: false,
            };
            cases.push(case(format!("GetUpload, {label}"), code, &w, async move {
                api.get_upload(req).await
            }));
            let mut api = a.api();
            let req = pb::WatchProgressRequest {
                upload_id: id.clone(),
            };
            cases.push(case(
                format!("WatchProgress, {label}"),
                code,
                &w,
                async move { api.watch_progress(req).await },
            ));
            let mut items = a.items();
            let req = submission(
                &format!("k-{}", label.replace([' ', '\''], "-")),
                "",
                pb::ItemKind::DigitalFile,
                "Pack",
                &[(&id, "")],
            );
            cases.push(case(format!("SubmitItem, {label}"), code, &w, async move {
                items.submit_item(req).await
            }));
        }
    }
    // Every item RPC with each form of item id.
    for (label, id, code, w) in forms("item", &b_item.item_id) {
        let w = words(&w);
        let mut items = a.items();
        let req = pb::GetItemRequest {
            item_id: id.clone(),
        };
        cases.push(case(format!("GetItem, {label}"), code, &w, async move {
            items.get_item(req).await
        }));
        let mut items = a.items();
        let req = pb::WatchItemRequest {
            item_id: id.clone(),
        };
        cases.push(case(format!("WatchItem, {label}"), code, &w, async move {
            items.watch_item(req).await
        }));
        let mut items = a.items();
        let req = pb::ListVersionsRequest {
            item_id: id.clone(),
            file_id: String::new(),
        };
        cases.push(case(
            format!("ListVersions, {label}"),
            code,
            &w,
            async move { items.list_versions(req).await },
        ));
        let mut items = a.items();
        let req = pb::SetCurrentVersionRequest {
            item_id: id.clone(),
            file_id: b_file.clone(),
            version: 1,
        };
        cases.push(case(
            format!("SetCurrentVersion, {label}"),
            code,
            &w,
            async move { items.set_current_version(req).await },
        ));
        let mut items = a.items();
        let req = pb::GetDownloadUrlRequest {
            item_id: id.clone(),
            file_id: b_file.clone(),
            version: 0,
        };
        cases.push(case(
            format!("GetDownloadUrl, {label}"),
            code,
            &w,
            async move { items.get_download_url(req).await },
        ));
        let mut items = a.items();
        let req = pb::GrantAccessRequest {
            item_id: id.clone(),
            user_id: "buyer-1".into(),
        };
        cases.push(case(
            format!("GrantAccess, {label}"),
            code,
            &w,
            async move { items.grant_access(req).await },
        ));
        let mut items = a.items();
        let req = pb::RevokeAccessRequest {
            item_id: id.clone(),
            user_id: "buyer-1".into(),
        };
        cases.push(case(
            format!("RevokeAccess, {label}"),
            code,
            &w,
            async move { items.revoke_access(req).await },
        ));
        let mut items = a.items();
        let req = submission(
            &format!("k-{}", label.replace([' ', '\''], "-")),
            &id,
            pb::ItemKind::DigitalFile,
            "Pack",
            &[],
        );
        cases.push(case(format!("SubmitItem, {label}"), code, &w, async move {
            items.submit_item(req).await
        }));
    }
    // File ids on the caller's own item: malformed, random, another seller's file.
    let random_file = uuid::Uuid::now_v7().to_string();
    for (label, id, code, w) in [
        (
            "malformed file id",
            "../../etc/passwd".to_owned(),
            Code::InvalidArgument,
            vec!["file id", "not a valid id"],
        ),
        (
            "random file id",
            random_file.clone(),
            Code::NotFound,
            vec![random_file.as_str(), "not a file of item"],
        ),
        (
            "another seller's file id",
            b_file.clone(),
            Code::NotFound,
            vec![b_file.as_str(), "not a file of item"],
        ),
    ] {
        let mut items = a.items();
        let req = pb::ListVersionsRequest {
            item_id: a_item.item_id.clone(),
            file_id: id.clone(),
        };
        cases.push(case(
            format!("ListVersions, {label}"),
            code,
            &w,
            async move { items.list_versions(req).await },
        ));
        let mut items = a.items();
        let req = pb::SetCurrentVersionRequest {
            item_id: a_item.item_id.clone(),
            file_id: id.clone(),
            version: 1,
        };
        cases.push(case(
            format!("SetCurrentVersion, {label}"),
            code,
            &w,
            async move { items.set_current_version(req).await },
        ));
        let mut items = a.items();
        let req = pb::GetDownloadUrlRequest {
            item_id: a_item.item_id.clone(),
            file_id: id.clone(),
            version: 0,
        };
        cases.push(case(
            format!("GetDownloadUrl, {label}"),
            code,
            &w,
            async move { items.get_download_url(req).await },
        ));
        let mut items = a.items();
        let req = submission(
            &format!("k-{}", label.replace([' ', '\''], "-")),
            &a_item.item_id,
            pb::ItemKind::DigitalFile,
            "Pack",
            &[(&a_ready.upload_id, &id)],
        );
        // A submission naming a file its item lacks is a wrong argument of the submission.
        let w: Vec<&str> = match code {
            Code::NotFound => vec![w[0], "not a file of this item"],
            _ => w.clone(),
        };
        cases.push(case(
            format!("SubmitItem, {label}"),
            Code::InvalidArgument,
            &w,
            async move { items.submit_item(req).await },
        ));
    }
    // User ids given to the access calls.
    for bad in ["", "../buyer", "buyer 1", &"u".repeat(65)] {
        let mut items = a.items();
        let req = pb::GrantAccessRequest {
            item_id: a_item.item_id.clone(),
            user_id: bad.to_owned(),
        };
        cases.push(case(
            format!("GrantAccess, user id {bad:?}"),
            Code::InvalidArgument,
            &["user_id", "not a user id"],
            async move { items.grant_access(req).await },
        ));
        let mut items = a.items();
        let req = pb::RevokeAccessRequest {
            item_id: a_item.item_id.clone(),
            user_id: bad.to_owned(),
        };
        cases.push(case(
            format!("RevokeAccess, user id {bad:?}"),
            Code::InvalidArgument,
            &["user_id", "not a user id"],
            async move { items.revoke_access(req).await },
        ));
    }
    let refused = refuse_all(&app, "id", cases).await;
    assert!(refused >= 80, "{refused}");

    // The positive control: A's own ids reach A's own things.
    a.get(&a_ready.upload_id).await.expect("A's own upload");
}
