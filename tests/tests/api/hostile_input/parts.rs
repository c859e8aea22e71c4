//! SignPart and SignParts given hostile part numbers, lengths, MD5s and batches,
//! and asked for parts of uploads that no longer take them. A call with one bad
//! part signs none: nothing is recorded for any part of it.

use tonic::Code;
use upload_domain::SellerGroup;
use upload_e2e::{AppOptions, MIB, TestApp, TestFile, pb};

use super::{Case, case, refuse_all};

fn part(number: u32, md5_len: usize, length: u64) -> pb::PartToSign {
    pb::PartToSign {
        checksum_sha256: Vec::new(),
        part_number: number,
        content_md5: vec![7; md5_len],
        content_length: length,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_parts_and_batches_sign_and_record_nothing() {
    let app = TestApp::spawn_with(AppOptions {
        worker: false,
        ..Default::default()
    })
    .await;
    let client = app.client("seller-a", SellerGroup::Standard).await;
    // 12 MiB in 5 MiB parts: 5, 5 and 2 MiB.
    let open = client
        .create("a.bin", 12 * MIB, "application/octet-stream", Some(5 * MIB))
        .await
        .unwrap();
    let (_, completed) = app
        .upload_whole(
            "seller-a",
            &TestFile::random(MIB),
            "c.bin",
            "application/octet-stream",
        )
        .await;
    app.expect_unfinished_jobs(1); // its scan, with no worker to run it
    let aborted = client
        .create("b.bin", MIB, "application/octet-stream", None)
        .await
        .unwrap();
    client.abort(&aborted.upload_id).await.unwrap();
    let expired = client
        .create("e.bin", MIB, "application/octet-stream", None)
        .await
        .unwrap();
    app.execute(&format!(
        "UPDATE uploads SET expires_at = now() - interval '1 minute' WHERE id = '{}'",
        expired.upload_id
    ))
    .await;

    let five = 5 * MIB;
    let mut cases: Vec<Case> = Vec::new();
    let mut one =
        |label: &str, upload: &pb::Upload, p: Option<pb::PartToSign>, code, words: &[&str]| {
            let mut api = client.api();
            let req = pb::SignPartRequest {
                upload_id: upload.upload_id.clone(),
                part: p,
            };
            cases.push(case(
                format!("SignPart, {label}"),
                code,
                words,
                async move { api.sign_part(req).await },
            ));
        };
    let bad = Code::InvalidArgument;
    one("no part", &open, None, bad, &["part is required"]);
    one(
        "part 0",
        &open,
        Some(part(0, 16, five)),
        bad,
        &["part number 0", "1 to 3"],
    );
    one(
        "part count + 1",
        &open,
        Some(part(4, 16, five)),
        bad,
        &["part number 4", "1 to 3"],
    );
    one(
        "part u32::MAX",
        &open,
        Some(part(u32::MAX, 16, five)),
        bad,
        &["part number 4294967295", "out of range"],
    );
    one(
        "length 0",
        &open,
        Some(part(1, 16, 0)),
        bad,
        &["part 1", "exactly 5242880"],
    );
    one(
        "length one short",
        &open,
        Some(part(1, 16, five - 1)),
        bad,
        &["part 1", "exactly 5242880", "5242879"],
    );
    one(
        "length one over",
        &open,
        Some(part(1, 16, five + 1)),
        bad,
        &["part 1", "exactly 5242880"],
    );
    one(
        "last part at full size",
        &open,
        Some(part(3, 16, five)),
        bad,
        &["part 3", "exactly 2097152"],
    );
    one(
        "length u64::MAX",
        &open,
        Some(part(2, 16, u64::MAX)),
        bad,
        &["part 2", "18446744073709551615"],
    );
    one(
        "MD5 of 0 bytes",
        &open,
        Some(part(1, 0, five)),
        bad,
        &["16 bytes", "got 0"],
    );
    one(
        "MD5 of 15 bytes",
        &open,
        Some(part(1, 15, five)),
        bad,
        &["16 bytes", "got 15"],
    );
    one(
        "MD5 of 17 bytes",
        &open,
        Some(part(1, 17, five)),
        bad,
        &["16 bytes", "got 17"],
    );
    one(
        "MD5 as 32 hex characters",
        &open,
        Some(part(1, 32, five)),
        bad,
        &["raw digest", "got 32"],
    );
    one(
        "MD5 as base64 text",
        &open,
        Some(pb::PartToSign {
            checksum_sha256: Vec::new(),
            part_number: 1,
            content_md5: b"1B2M2Y8AsgTpgAmY7PhCfg==".to_vec(),
            content_length: five,
        }),
        bad,
        &["16 bytes", "got 24"],
    );
    let ended = Code::FailedPrecondition;
    one(
        "of a completed upload",
        &completed,
        Some(part(1, 16, MIB)),
        ended,
        &["no longer accepts parts"],
    );
    one(
        "of an aborted upload",
        &aborted,
        Some(part(1, 16, MIB)),
        ended,
        &["no longer accepts parts"],
    );
    one(
        "of an upload past its deadline",
        &expired,
        Some(part(1, 16, MIB)),
        ended,
        &["expired", "start a new upload"],
    );

    let mut many = |label: &str, parts: Vec<pb::PartToSign>, code, words: &[&str]| {
        let mut api = client.api();
        let req = pb::SignPartsRequest {
            upload_id: open.upload_id.clone(),
            parts,
        };
        cases.push(case(
            format!("SignParts, {label}"),
            code,
            words,
            async move { api.sign_parts(req).await },
        ));
    };
    many("no parts", vec![], bad, &["parts is empty"]);
    many(
        "1001 parts",
        (0..1001).map(|_| part(1, 16, five)).collect(),
        bad,
        &["1001 parts", "at most 1000"],
    );
    many(
        "the same part twice",
        vec![part(1, 16, five), part(1, 16, five)],
        bad,
        &["part 1 appears twice"],
    );
    many(
        "a bad MD5 after good parts",
        vec![part(1, 16, five), part(2, 16, five), part(3, 3, 2 * MIB)],
        bad,
        &["16 bytes", "got 3"],
    );
    many(
        "a bad number after good parts",
        vec![part(1, 16, five), part(9, 16, five)],
        bad,
        &["part number 9"],
    );
    many(
        "a bad length before good parts",
        vec![part(3, 16, five), part(1, 16, five)],
        bad,
        &["part 3", "exactly 2097152"],
    );

    let refused = refuse_all(&app, "part", cases).await;
    assert!(refused >= 20, "{refused}");

    // The positive control: the same upload signs its parts as planned.
    let signed = client
        .api()
        .sign_parts(pb::SignPartsRequest {
            upload_id: open.upload_id.clone(),
            parts: vec![part(1, 16, five), part(2, 16, five), part(3, 16, 2 * MIB)],
        })
        .await
        .expect("the planned parts are signed");
    assert_eq!(signed.into_inner().parts.len(), 3);
}
