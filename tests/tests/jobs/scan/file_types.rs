//! A file's name, its declared type and its bytes must all agree, and a program or
//! a script (by its bytes; by its name it is refused at CreateUpload) is refused
//! unless the deployment sells software: then it is accepted, scanned and marked
//! as software in its metadata. Table-driven, each case through the real scan.

use upload_domain::FailureCode;
use upload_e2e::{AppOptions, TestApp, TestFile, WAIT, pb, zipped};

const OCTET: &str = "application/octet-stream";

/// (name, declared type, bytes, the code it is rejected with or `None` when it
/// is ready, words its reason must hold).
type Case = (
    &'static str,
    &'static str,
    Vec<u8>,
    Option<FailureCode>,
    &'static [&'static str],
);

/// Bytes beginning with `head`, padded to 64 KiB with text.
fn starting_with(head: &[u8]) -> Vec<u8> {
    let mut bytes = head.to_vec();
    while bytes.len() < 64 * 1024 {
        bytes.extend_from_slice(b"padding line of an ordinary file\n");
    }
    bytes
}

/// A real program: this machine's `true`.
fn elf() -> Vec<u8> {
    std::fs::read("/bin/true").expect("/bin/true")
}

/// Uploads each `(name, declared, bytes)` as one seller on `app`, then waits for
/// each to settle; the settled uploads in order.
async fn settle_all(app: &TestApp, cases: &[(&str, &str, Vec<u8>)]) -> Vec<pb::Upload> {
    let mut started = Vec::new();
    for (name, declared, bytes) in cases {
        let file = TestFile::from_bytes("file", bytes);
        started.push(
            app.upload_whole("seller-types", &file, name, declared)
                .await,
        );
    }
    let mut settled = Vec::new();
    for (client, upload) in &started {
        settled.push(app.wait_settled(client, &upload.upload_id, WAIT).await);
    }
    settled
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn names_declarations_and_bytes_that_disagree_and_programs_are_rejected_with_a_reason() {
    let app = TestApp::spawn().await;
    let jscript =
        starting_with(b"var shell = new ActiveXObject(\"WScript.Shell\"); shell.Run(\"calc\");\n");
    let table: Vec<Case> = vec![
        (
            "tool.bin",
            OCTET,
            elf(),
            Some(FailureCode::SoftwareNotAllowed),
            &["program or a script", "application/x-executable"],
        ),
        (
            "update",
            OCTET,
            starting_with(b"MZ\x90\x00\x03\x00\x00\x00"),
            Some(FailureCode::SoftwareNotAllowed),
            &["portable-executable"],
        ),
        (
            "helper",
            OCTET,
            starting_with(b"\xcf\xfa\xed\xfe\x07\x00\x00\x01"),
            Some(FailureCode::SoftwareNotAllowed),
            &["mach-binary"],
        ),
        (
            "install.txt",
            "text/plain",
            starting_with(b"#!/bin/sh\nrm -rf ~\n"),
            Some(FailureCode::SoftwareNotAllowed),
            &["shellscript"],
        ),
        (
            "invoice.pdf",
            "application/pdf",
            jscript.clone(),
            Some(FailureCode::TypeMismatch),
            &["declared as application/pdf"],
        ),
        (
            "report.pdf",
            OCTET,
            zipped("report.txt", b"not a pdf"),
            Some(FailureCode::TypeMismatch),
            &["named .pdf", "application/zip"],
        ),
        (
            "song.mp3",
            OCTET,
            starting_with(b"no sound here\n"),
            Some(FailureCode::TypeMismatch),
            &["named .mp3"],
        ),
        (
            "pack.zip",
            "application/zip",
            jscript,
            Some(FailureCode::TypeMismatch),
            &["declared as application/zip"],
        ),
        // The controls: honest files of the same kinds are ready.
        (
            "notes.txt",
            "text/plain",
            starting_with(b"Chapter one\n"),
            None,
            &[],
        ),
        (
            "pack.zip",
            OCTET,
            zipped("readme.txt", b"assets"),
            None,
            &[],
        ),
        (
            "data.bin",
            OCTET,
            starting_with(b"\x00\x01raw sample data"),
            None,
            &[],
        ),
    ];
    let cases: Vec<(&str, &str, Vec<u8>)> = table
        .iter()
        .map(|(name, declared, bytes, _, _)| (*name, *declared, bytes.clone()))
        .collect();
    let settled = settle_all(&app, &cases).await;
    for ((name, declared, _, expected, words), upload) in table.iter().zip(&settled) {
        match expected {
            None => {
                assert_eq!(
                    upload.state,
                    pb::UploadState::Ready as i32,
                    "{name}: {upload:?}"
                );
                assert!(
                    !upload.metadata.as_ref().expect("metadata").software,
                    "{name}"
                );
            }
            Some(code) => {
                assert_eq!(
                    upload.state,
                    pb::UploadState::Rejected as i32,
                    "{name} ({declared}): {upload:?}"
                );
                let failure = upload.failure.clone().expect("a reason");
                assert_eq!(failure.code, code.as_str(), "{name}: {}", failure.message);
                for word in *words {
                    assert!(
                        failure.message.contains(word),
                        "{name}: {} lacks {word:?}",
                        failure.message
                    );
                }
                // Scanned first (found no malware), and nothing ran on it after.
                assert_ne!(
                    upload.scan.as_ref().map(|s| s.verdict),
                    Some(pb::ScanVerdict::Infected as i32),
                    "{name}"
                );
                assert!(upload.scan.is_some(), "{name} was scanned");
            }
        }
    }
    assert_eq!(
        app.count(&format!(
            "SELECT count(*) FROM apalis.jobs WHERE job_type IN ('upload.metadata', 'upload.preview') \
             AND convert_from(job, 'UTF8')::jsonb->>'upload_id' IN ({})",
            settled
                .iter()
                .filter(|u| u.state == pb::UploadState::Rejected as i32)
                .map(|u| format!("'{}'", u.upload_id))
                .collect::<Vec<_>>()
                .join(",")
        ))
        .await,
        0,
        "no processing for a rejected file"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn where_software_is_sold_programs_are_accepted_scanned_and_marked() {
    let app = TestApp::spawn_with(AppOptions {
        env: vec![("UPLOAD_ALLOW_SOFTWARE".into(), "true".into())],
        ..Default::default()
    })
    .await;
    let cases = vec![
        ("tool.bin", OCTET, elf()),
        (
            "setup.bat",
            OCTET,
            starting_with(b"@echo off\r\necho hello\r\n"),
        ),
        ("install", OCTET, starting_with(b"#!/bin/sh\necho hello\n")),
        ("notes.txt", "text/plain", starting_with(b"Chapter one\n")),
    ];
    let settled = settle_all(&app, &cases).await;
    for ((name, _, _), upload) in cases.iter().zip(&settled) {
        assert_eq!(
            upload.state,
            pb::UploadState::Ready as i32,
            "{name}: {upload:?}"
        );
        assert_eq!(
            upload.scan.as_ref().map(|s| s.verdict),
            Some(pb::ScanVerdict::Clean as i32),
            "{name} was scanned"
        );
        let software = upload.metadata.as_ref().expect("metadata").software;
        assert_eq!(software, *name != "notes.txt", "{name}");
    }
}
