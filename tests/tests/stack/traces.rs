//! Traces over OTLP: with a collector configured, one trace, started by the
//! caller's `traceparent`, follows an upload through its RPCs and every job
//! (scan, metadata, preview, persist, move), each job a child of what enqueued it.

use std::time::Duration;

use md5::Digest;
use upload_config::{LogFormat, TelemetryConfig};
use upload_domain::SellerGroup;
use upload_e2e::{Collector, MIB, TestApp, TestFile, pb, poll_until, submission, wait_item};

/// `msg` as a request carrying `traceparent`.
fn traced<T>(msg: T, traceparent: &str) -> tonic::Request<T> {
    let mut req = tonic::Request::new(msg);
    req.metadata_mut()
        .insert("traceparent", traceparent.parse().expect("a header value"));
    req
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_trace_follows_an_upload_from_create_upload_through_every_job_to_its_move() {
    let collector = Collector::start().await;
    // This test's process exports to the stand-in (the server and the worker run
    // in it); the harness's own log setup then finds a subscriber in place.
    let _telemetry = upload_telemetry::init(
        &TelemetryConfig {
            log_format: LogFormat::Text,
            otlp_endpoint: Some(collector.endpoint.clone()),
        },
        "upload-e2e",
    )
    .expect("telemetry");
    let app = TestApp::spawn().await;
    let trace_id = hex::encode(rand::random::<[u8; 16]>());
    let traceparent = format!(
        "00-{trace_id}-{}-01",
        hex::encode(rand::random::<[u8; 8]>())
    );
    let client = app.client("seller-traced", SellerGroup::Standard).await;
    let file = TestFile::random(MIB + 5);
    let body = std::fs::read(&file.path).expect("the file");

    let created = client
        .api()
        .create_upload(traced(
            pb::CreateUploadRequest {
                file_name: "traced.bin".into(),
                size_bytes: file.size,
                content_type: "application/octet-stream".into(),
                ..Default::default()
            },
            &traceparent,
        ))
        .await
        .expect("CreateUpload")
        .into_inner()
        .upload
        .expect("upload");
    let id = created.upload_id.clone();
    let signed = client
        .api()
        .sign_parts(traced(
            pb::SignPartsRequest {
                upload_id: id.clone(),
                parts: vec![pb::PartToSign {
                    checksum_sha256: Vec::new(),
                    part_number: 1,
                    content_md5: md5::Md5::digest(&body).to_vec(),
                    content_length: file.size,
                }],
            },
            &traceparent,
        ))
        .await
        .expect("SignParts")
        .into_inner()
        .parts
        .remove(0);
    let mut put = reqwest::Client::new().put(&signed.url).body(body);
    for h in &signed.headers {
        put = put.header(h.name.as_str(), h.value.as_str());
    }
    assert!(put.send().await.expect("PUT").status().is_success());
    client
        .api()
        .complete_upload(traced(
            pb::CompleteUploadRequest {
                upload_id: id.clone(),
            },
            &traceparent,
        ))
        .await
        .expect("CompleteUpload");
    let ready = app
        .wait_settled(&client, &id, Duration::from_secs(60))
        .await;
    assert_eq!(ready.state, pb::UploadState::Ready as i32);
    let submitted = client
        .items()
        .submit_item(traced(
            submission(
                "traced",
                "",
                pb::ItemKind::DigitalFile,
                "Traced",
                &[(&id, "")],
            ),
            &traceparent,
        ))
        .await
        .expect("SubmitItem")
        .into_inner();
    let item = wait_item(
        &client,
        &submitted.item.expect("item").item_id,
        Duration::from_secs(60),
    )
    .await;
    assert_eq!(item.state, pb::SubmissionState::Stored as i32);

    let expected = [
        "UploadService/CreateUpload",
        "UploadService/SignParts",
        "UploadService/CompleteUpload",
        "job upload.scan",
        "job upload.metadata",
        "job upload.preview",
        "ItemService/SubmitItem",
        "job item.persist",
        "job item.move",
    ];
    let spans = poll_until("the trace's spans", Duration::from_secs(30), || async {
        let spans = collector.trace(&trace_id);
        let complete = expected
            .iter()
            .all(|name| spans.iter().any(|s| s.name == *name));
        (complete, spans)
    })
    .await;
    let span = |name: &str| {
        spans
            .iter()
            .find(|s| s.name == name)
            .unwrap_or_else(|| panic!("no {name} span in {spans:#?}"))
    };
    // Each job descends from what enqueued it (through the handler's own spans).
    let descends = |child: &str, ancestor: &str| {
        let ancestor = &span(ancestor).span_id;
        let mut at = span(child).parent_span_id.clone();
        while !at.is_empty() {
            if &at == ancestor {
                return true;
            }
            at = spans
                .iter()
                .find(|s| s.span_id == at)
                .map(|s| s.parent_span_id.clone())
                .unwrap_or_default();
        }
        false
    };
    for (child, ancestor) in [
        ("job upload.scan", "UploadService/CompleteUpload"),
        ("job upload.metadata", "job upload.scan"),
        ("job upload.preview", "job upload.scan"),
        ("job item.persist", "ItemService/SubmitItem"),
        ("job item.move", "job item.persist"),
    ] {
        assert!(
            descends(child, ancestor),
            "{child} under {ancestor}: {spans:#?}"
        );
    }
    // And every RPC of the upload is a child of the caller's own span.
    let caller = &traceparent[36..52];
    for rpc in &expected[..3] {
        assert_eq!(span(rpc).parent_span_id, caller, "{rpc}");
    }
    eprintln!("trace {trace_id}: {} spans", spans.len());
}
