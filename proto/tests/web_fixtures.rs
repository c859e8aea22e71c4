//! The bytes the web client's tests decode (`clients/web/test/fixtures/
//! rust-encoded.json`): every response message the client reads, with every
//! field set, encoded by prost as the server encodes it, and a refusal's
//! `grpc-status-details-bin` as tonic-types encodes it. Each struct is written
//! out without `..Default::default()`, so a field added to `proto/` fails to
//! compile here until the fixture sets it; the committed file must equal what
//! this encodes (`UPLOAD_WEB_FIXTURES=write` writes it anew).

#![allow(clippy::unwrap_used)] // Test code states its expectations with unwrap.

use prost::Message;
use prost_types::Timestamp;
use upload_domain::{FailureCode, REFUSAL_DOMAIN, Refusal};
use upload_proto::v1 as pb;

/// 2^53 + 1: the first integer a JavaScript number cannot hold.
const PAST_DOUBLE: u64 = 9_007_199_254_740_993;

fn at(seconds: i64) -> Option<Timestamp> {
    Some(Timestamp {
        seconds,
        nanos: 123_000_000,
    })
}

fn upload() -> pb::Upload {
    pb::Upload {
        upload_id: "01940000-0000-7000-8000-000000000001".into(),
        file_name: "Fürst – film.mp4".into(),
        size_bytes: PAST_DOUBLE,
        content_type: "video/mp4".into(),
        state: pb::UploadState::Ready as i32,
        part_size_bytes: 16 << 20,
        part_count: 10_000,
        part_checksum: pb::PartChecksum::Sha256 as i32,
        created_at: at(1_796_000_000),
        updated_at: at(1_796_000_060),
        expires_at: at(1_796_086_400),
        metadata: Some(pb::FileMetadata {
            size_bytes: PAST_DOUBLE,
            md5_hex: "44d88612fea8a8f36de82e1278abb02f".into(),
            sha256_hex: "275a021bbfb6489e54d471899f7db9d1663fc695ec2fe2a2c4538aabf651fd0f".into(),
            sniffed_content_type: "video/mp4".into(),
            software: true,
        }),
        failure: Some(pb::Failure {
            code: FailureCode::TypeMismatch.as_str().into(),
            message: "the file's bytes are a zip, not a video".into(),
        }),
        scan: Some(pb::ScanResult {
            verdict: pb::ScanVerdict::Released as i32,
            signature: "Eicar-Test-Signature".into(),
            scanned_at: at(1_796_000_030),
            engine_version: "ClamAV 1.4.6".into(),
            signature_version: i64::MAX,
            uninspected: pb::Uninspected::TooLarge as i32,
            uninspected_reason: "unpacked past 4000 MiB".into(),
            released_by: "operator:ana".into(),
            release_reason: "a false alarm".into(),
            released_signature: "Eicar-Test-Signature".into(),
        }),
        media: Some(pb::MediaInfo {
            container: "mov,mp4,m4a,3gp,3g2,mj2".into(),
            duration_ms: PAST_DOUBLE,
            bit_rate: 4_000_000,
            width: 3840,
            height: 2160,
            video_codec: "h264".into(),
            audio_codec: "aac".into(),
            frame_rate: 29.97,
        }),
        previews: vec![pb::Preview {
            name: "poster.jpg".into(),
            kind: pb::PreviewKind::Clip as i32,
            content_type: "image/jpeg".into(),
            width: 640,
            height: 360,
            size_bytes: PAST_DOUBLE,
            url: "http://127.0.0.1:3900/temp/previews/poster.jpg?X-Amz-Expires=900".into(),
        }],
    }
}

fn stages() -> Vec<pb::StageProgress> {
    vec![pb::StageProgress {
        stage: pb::Stage::Scan as i32,
        status: pb::StageStatus::Running as i32,
        bytes_done: PAST_DOUBLE - 1,
        bytes_total: PAST_DOUBLE,
        detail: "scanning".into(),
    }]
}

fn signed_part() -> pb::SignedPart {
    pb::SignedPart {
        part_number: 10_000,
        method: "PUT".into(),
        url: "http://127.0.0.1:3900/temp/uploads/s/u?partNumber=10000".into(),
        headers: vec![pb::Header {
            name: "content-md5".into(),
            value: "RNiGEv6oqPNt6C4SeKuwLw==".into(),
        }],
        expires_at: at(1_796_000_900),
    }
}

fn version() -> pb::FileVersion {
    pb::FileVersion {
        file_id: "main".into(),
        version: 3,
        md5_hex: "44d88612fea8a8f36de82e1278abb02f".into(),
        sha256_hex: "275a021bbfb6489e54d471899f7db9d1663fc695ec2fe2a2c4538aabf651fd0f".into(),
        size_bytes: PAST_DOUBLE,
        file_name: "film.mp4".into(),
        content_type: "video/mp4".into(),
        created_at: at(1_796_000_100),
        upload_id: "01940000-0000-7000-8000-000000000001".into(),
        current: true,
        quarantined: Some(pb::VersionQuarantine {
            signature: "Win.Test.Found".into(),
            quarantined_at: at(1_796_000_200),
            signature_version: i64::MIN,
            held: true,
        }),
    }
}

fn item() -> pb::Item {
    pb::Item {
        item_id: "01940000-0000-7000-8000-000000000002".into(),
        kind: pb::ItemKind::Video as i32,
        title: "A film".into(),
        description: "in 4K".into(),
        state: pb::SubmissionState::Stored as i32,
        failure: Some(pb::Failure {
            code: FailureCode::ContentHeld.as_str().into(),
            message: "held for review".into(),
        }),
        submission_id: "01940000-0000-7000-8000-000000000003".into(),
        files: vec![pb::ItemFile {
            file_id: "main".into(),
            current: Some(version()),
            version_count: 3,
        }],
        created_at: at(1_796_000_100),
        updated_at: at(1_796_000_300),
    }
}

/// A refusal's `grpc-status-details-bin`: ErrorInfo, BadRequest and RetryInfo.
fn refusal_details() -> Vec<u8> {
    use tonic_types::{ErrorDetails, StatusExt};
    let mut details = ErrorDetails::new();
    details.set_error_info(
        Refusal::CreateRateExceeded.as_str(),
        REFUSAL_DOMAIN,
        std::collections::HashMap::new(),
    );
    details.add_bad_request_violation("file_name", "names no program");
    details.set_retry_info(Some(std::time::Duration::from_millis(1500)));
    let status = tonic::Status::with_error_details(
        tonic::Code::ResourceExhausted,
        "too many uploads",
        details,
    );
    status.details().to_vec()
}

/// Every response message the web client reads, by its full name.
fn fixtures() -> Vec<(&'static str, Vec<u8>)> {
    let upload = || Some(upload());
    let history = vec![pb::UploadChange {
        from_state: pb::UploadState::Scanning as i32,
        to_state: pb::UploadState::Quarantined as i32,
        cause: pb::ChangeCause::FoundInfected as i32,
        attempt: 2,
        actor: "job:upload.scan".into(),
        detail: "infected: Eicar-Test-Signature".into(),
        at: at(1_796_000_040),
    }];
    let files = vec![pb::FileToSubmit {
        upload_id: "01940000-0000-7000-8000-000000000001".into(),
        file_id: "main".into(),
    }];
    vec![
        (
            "upload.v1.CreateUploadResponse",
            pb::CreateUploadResponse { upload: upload() }.encode_to_vec(),
        ),
        (
            "upload.v1.SignPartResponse",
            pb::SignPartResponse {
                part: Some(signed_part()),
            }
            .encode_to_vec(),
        ),
        (
            "upload.v1.SignPartsResponse",
            pb::SignPartsResponse {
                parts: vec![signed_part(), signed_part()],
            }
            .encode_to_vec(),
        ),
        (
            "upload.v1.ListUploadedPartsResponse",
            pb::ListUploadedPartsResponse {
                parts: vec![pb::UploadedPart {
                    checksum_sha256: (0..32).collect(),
                    part_number: 1,
                    size_bytes: PAST_DOUBLE,
                    etag: "\"44d88612fea8a8f36de82e1278abb02f\"".into(),
                }],
                missing_part_numbers: vec![2, 3, 10_000],
                part_size_bytes: PAST_DOUBLE,
                part_count: 10_000,
            }
            .encode_to_vec(),
        ),
        (
            "upload.v1.CompleteUploadResponse",
            pb::CompleteUploadResponse { upload: upload() }.encode_to_vec(),
        ),
        (
            "upload.v1.AbortUploadResponse",
            pb::AbortUploadResponse { upload: upload() }.encode_to_vec(),
        ),
        (
            "upload.v1.GetUploadResponse",
            pb::GetUploadResponse {
                upload: upload(),
                stages: stages(),
                history,
            }
            .encode_to_vec(),
        ),
        (
            "upload.v1.WatchProgressResponse",
            pb::WatchProgressResponse {
                upload: upload(),
                stages: stages(),
            }
            .encode_to_vec(),
        ),
        (
            "upload.v1.SubmitItemResponse",
            pb::SubmitItemResponse {
                item: Some(item()),
                submission_id: "01940000-0000-7000-8000-000000000003".into(),
                files,
            }
            .encode_to_vec(),
        ),
        (
            "upload.v1.GetItemResponse",
            pb::GetItemResponse { item: Some(item()) }.encode_to_vec(),
        ),
        (
            "upload.v1.WatchItemResponse",
            pb::WatchItemResponse { item: Some(item()) }.encode_to_vec(),
        ),
        (
            "upload.v1.ListVersionsResponse",
            pb::ListVersionsResponse {
                versions: vec![version()],
            }
            .encode_to_vec(),
        ),
        (
            "upload.v1.SetCurrentVersionResponse",
            pb::SetCurrentVersionResponse {
                file: Some(pb::ItemFile {
                    file_id: "main".into(),
                    current: Some(version()),
                    version_count: 3,
                }),
            }
            .encode_to_vec(),
        ),
        (
            "upload.v1.GetDownloadUrlResponse",
            pb::GetDownloadUrlResponse {
                url: "http://127.0.0.1:3900/regular/files/44d8?X-Amz-Expires=300".into(),
                expires_at: at(1_796_000_400),
                version: Some(version()),
            }
            .encode_to_vec(),
        ),
        (
            "upload.v1.GrantAccessResponse",
            pb::GrantAccessResponse {}.encode_to_vec(),
        ),
        (
            "upload.v1.RevokeAccessResponse",
            pb::RevokeAccessResponse {}.encode_to_vec(),
        ),
        ("google.rpc.Status", refusal_details()),
    ]
}

#[test]
fn the_web_client_s_fixtures_are_what_the_server_encodes() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../clients/web/test/fixtures/rust-encoded.json");
    let entries: Vec<serde_json::Value> = fixtures()
        .into_iter()
        .map(|(name, bytes)| serde_json::json!({ "type": name, "hex": hex::encode(bytes) }))
        .collect();
    let encoded = serde_json::to_string_pretty(&entries).unwrap() + "\n";
    if std::env::var("UPLOAD_WEB_FIXTURES").as_deref() == Ok("write") {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, &encoded).unwrap();
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        committed == encoded,
        "{} is not what the server encodes today: run UPLOAD_WEB_FIXTURES=write cargo nextest run -p upload-proto, then the web client's npm test",
        path.display()
    );
}

#[test]
fn the_web_client_knows_every_refusal_code() {
    let path =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../clients/web/src/refusals.ts");
    let codes: String = Refusal::ALL
        .iter()
        .map(|r| format!("  \"{}\",\n", r.as_str()))
        .collect();
    let written = format!(
        "// The stable codes a refusal's ErrorInfo carries (`reason`), as the server's\n\
         // `Refusal` vocabulary lists them. Written by the Rust test\n\
         // `the_web_client_knows_every_refusal_code` (UPLOAD_WEB_FIXTURES=write), which\n\
         // fails while this file differs from the server's list.\n\n\
         export const REFUSALS = [\n{codes}] as const;\n\n\
         /** A refusal code the service may send. */\n\
         export type Refusal = (typeof REFUSALS)[number];\n\n\
         /** Whether `reason` is a code this client knows. */\n\
         export function isRefusal(reason: string | undefined): reason is Refusal {{\n  \
         return (REFUSALS as readonly string[]).includes(reason ?? \"\");\n}}\n"
    );
    if std::env::var("UPLOAD_WEB_FIXTURES").as_deref() == Ok("write") {
        std::fs::write(&path, &written).unwrap();
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        committed == written,
        "{} lists other codes than the server: run UPLOAD_WEB_FIXTURES=write cargo nextest run -p upload-proto",
        path.display()
    );
}
