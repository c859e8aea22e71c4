//! SubmitItem given hostile fields, keys, kinds and files, and uploads that are
//! not ready, already used, or not videos: each refused with nothing queued.

use tonic::Code;
use upload_e2e::{MIB, TestApp, TestFile, pb, submission, submit_new_item};

use super::{Case, case, refuse_all};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_submissions_queue_nothing() {
    let mut app = TestApp::spawn().await;
    let small = || TestFile::random_zip(MIB / 4);
    let (client, used, item) = app
        .stored_item("seller-a", &small(), ("used.zip", "application/zip"), "k1")
        .await;
    let (_, ready) = app
        .ready_upload("seller-a", &small(), "ready.zip", "application/zip")
        .await;
    let (_, open) = app
        .upload_parts("seller-a", &TestFile::random(6 * MIB), Some(&[1]))
        .await;

    app.settle_and_stop_worker().await;

    let new =
        |key: &str, title: &str, description: &str, kind: pb::ItemKind| pb::SubmitItemRequest {
            item_id: String::new(),
            idempotency_key: key.to_owned(),
            title: title.to_owned(),
            description: description.to_owned(),
            kind: kind as i32,
            files: vec![pb::FileToSubmit {
                upload_id: ready.upload_id.clone(),
                file_id: String::new(),
            }],
        };
    let file = pb::ItemKind::DigitalFile;
    let mut table: Vec<(&str, pb::SubmitItemRequest, Code, Vec<&str>)> = vec![
        (
            "title empty",
            new("t1", "", "d", file),
            Code::InvalidArgument,
            vec!["title is required"],
        ),
        (
            "title only spaces",
            new("t2", "   ", "d", file),
            Code::InvalidArgument,
            vec!["title is required"],
        ),
        (
            "title of 201 characters",
            new("t3", &"é".repeat(201), "d", file),
            Code::InvalidArgument,
            vec!["longer than 200"],
        ),
        (
            "title with a line break",
            new("t4", "a\nb", "d", file),
            Code::InvalidArgument,
            vec!["title", "control characters"],
        ),
        (
            "title with NUL",
            new("t5", "a\0b", "d", file),
            Code::InvalidArgument,
            vec!["title", "control characters"],
        ),
        (
            "title with an escape sequence",
            new("t6", "\u{1b}[2Jclean", "d", file),
            Code::InvalidArgument,
            vec!["title", "control characters"],
        ),
        (
            "title with a right-to-left override",
            new("t7", "Pack \u{202E}exe.zip", "d", file),
            Code::InvalidArgument,
            vec!["title", "invisible formatting"],
        ),
        (
            "title with a right-to-left isolate",
            new("t8", "Pack \u{2067}x", "d", file),
            Code::InvalidArgument,
            vec!["title", "invisible formatting"],
        ),
        (
            "title with a zero-width space",
            new("t9", "Pa\u{200B}ck", "d", file),
            Code::InvalidArgument,
            vec!["title", "invisible formatting"],
        ),
        (
            "description of 20001 characters",
            new("d1", "Pack", &"x".repeat(20_001), file),
            Code::InvalidArgument,
            vec!["description", "longer than 20000"],
        ),
        (
            "description with NUL",
            new("d2", "Pack", "a\0b", file),
            Code::InvalidArgument,
            vec!["description", "control"],
        ),
        (
            "description with a bidi isolate",
            new("d3", "Pack", "a\u{2067}b", file),
            Code::InvalidArgument,
            vec!["description", "invisible formatting"],
        ),
        (
            "description with a byte-order mark",
            new("d4", "Pack", "\u{FEFF}a", file),
            Code::InvalidArgument,
            vec!["description", "invisible formatting"],
        ),
        (
            "idempotency key empty",
            new("", "Pack", "d", file),
            Code::InvalidArgument,
            vec!["idempotency_key"],
        ),
        (
            "idempotency key of 129 characters",
            new(&"k".repeat(129), "Pack", "d", file),
            Code::InvalidArgument,
            vec!["idempotency_key", "1-128"],
        ),
        (
            "idempotency key not ASCII",
            new("clé", "Pack", "d", file),
            Code::InvalidArgument,
            vec!["idempotency_key", "ASCII"],
        ),
        (
            "idempotency key with a space",
            new("a key", "Pack", "d", file),
            Code::InvalidArgument,
            vec!["idempotency_key", "visible"],
        ),
        (
            "kind unspecified",
            new("n1", "Pack", "d", pb::ItemKind::Unspecified),
            Code::InvalidArgument,
            vec!["kind is required"],
        ),
        (
            "key reused for another request",
            new("k1", "Another pack", "d", file),
            Code::AlreadyExists,
            vec!["\"k1\"", "different submission"],
        ),
        (
            "a video item of a zip",
            new("v1", "Clip", "d", pb::ItemKind::Video),
            Code::InvalidArgument,
            vec!["not a video"],
        ),
    ];
    let mut with_files = |label: &'static str,
                          key: &str,
                          kind: pb::ItemKind,
                          files: Vec<(String, String)>,
                          code,
                          words: Vec<&'static str>| {
        let mut req = new(key, "Pack", "d", kind);
        req.files = files
            .into_iter()
            .map(|(upload_id, file_id)| pb::FileToSubmit { upload_id, file_id })
            .collect();
        table.push((label, req, code, words));
    };
    let r = || (ready.upload_id.clone(), String::new());
    with_files(
        "no files for a new item",
        "f1",
        file,
        vec![],
        Code::InvalidArgument,
        vec!["at least one file"],
    );
    with_files(
        "21 files",
        "f2",
        file,
        (0..21)
            .map(|_| (uuid::Uuid::now_v7().to_string(), String::new()))
            .collect(),
        Code::InvalidArgument,
        vec!["at most 20 files"],
    );
    with_files(
        "the same upload twice",
        "f3",
        file,
        vec![r(), r()],
        Code::InvalidArgument,
        vec!["given twice"],
    );
    with_files(
        "an empty upload id",
        "f4",
        file,
        vec![(String::new(), String::new())],
        Code::InvalidArgument,
        vec!["upload_id"],
    );
    with_files(
        "an upload still being sent",
        "f5",
        file,
        vec![(open.upload_id.clone(), String::new())],
        Code::FailedPrecondition,
        vec!["cannot be submitted"],
    );
    with_files(
        "an upload already stored",
        "f6",
        file,
        vec![(used.upload_id.clone(), String::new())],
        Code::FailedPrecondition,
        vec!["cannot be submitted"],
    );
    with_files(
        "a video item of two files",
        "f7",
        pb::ItemKind::Video,
        vec![r(), (open.upload_id.clone(), String::new())],
        Code::InvalidArgument,
        vec!["at most 1 file"],
    );

    let mut cases: Vec<Case> = Vec::new();
    for (label, req, code, words) in table {
        let mut items = client.items();
        cases.push(case(label, code, &words, async move {
            items.submit_item(req).await
        }));
    }
    // Updates of the stored item: another kind, a kind out of range, a file twice.
    let file_id = item.files[0].file_id.clone();
    for (label, kind, files, code, words) in [
        (
            "update as another kind",
            pb::ItemKind::Video as i32,
            vec![],
            Code::InvalidArgument,
            vec!["digital", "cannot be submitted as a video"],
        ),
        (
            "update with kind 99",
            99,
            vec![],
            Code::InvalidArgument,
            vec!["kind is required"],
        ),
        (
            "one file given two uploads",
            file as i32,
            vec![
                (ready.upload_id.clone(), file_id.clone()),
                (open.upload_id.clone(), file_id.clone()),
            ],
            Code::InvalidArgument,
            vec!["two uploads in one submission"],
        ),
    ] {
        let mut req = submission(
            &format!("u-{}", label.replace(' ', "-")),
            &item.item_id,
            file,
            "Pack",
            &[],
        );
        req.kind = kind;
        req.files = files
            .into_iter()
            .map(|(upload_id, file_id)| pb::FileToSubmit { upload_id, file_id })
            .collect();
        let mut items = client.items();
        cases.push(case(label, code, &words, async move {
            items.submit_item(req).await
        }));
    }
    let refused = refuse_all(&app, "SubmitItem", cases).await;
    assert!(refused >= 25, "{refused}");

    // The positive control: the ready upload is submitted as a new item (its
    // persist job queued, for no worker now).
    submit_new_item(&client, "ok", file, "Pack two", &ready.upload_id).await;
    app.expect_unfinished_jobs(1);
}
