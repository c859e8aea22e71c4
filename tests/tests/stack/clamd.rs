//! The clamd the stack starts, with the signature database the project ships:
//! EICAR is found raw and inside a zip over INSTREAM; clean data passes; and the
//! limits sit above the largest upload, every limit reached is reported, ZIP64
//! entries (which clamd skips) are reported, and VERSION names database A.

use futures::StreamExt;
use upload_e2e::{EICAR, stack_env, zipped};

const CHUNK: usize = 1024 * 1024;

fn clamd() -> clamav_client::tokio::Tcp<String> {
    let addr = stack_env()
        .remove("UPLOAD_CLAMD_ADDR")
        .expect("UPLOAD_CLAMD_ADDR in the stack env");
    clamav_client::tokio::Tcp { host_address: addr }
}

/// Streams `data` to clamd over INSTREAM in 1 MiB chunks, in pieces as a store read delivers them.
async fn scan(data: Vec<u8>) -> String {
    let pieces: Vec<Result<bytes::Bytes, std::io::Error>> = data
        .chunks(64 * 1024)
        .map(|c| Ok(bytes::Bytes::copy_from_slice(c)))
        .collect();
    let response = clamav_client::tokio::scan_stream(
        futures::stream::iter(pieces).boxed(),
        clamd(),
        Some(CHUNK),
    )
    .await
    .expect("clamd answered");
    String::from_utf8_lossy(&response)
        .trim_end_matches('\0')
        .to_owned()
}

#[tokio::test]
async fn eicar_is_found_by_the_shipped_signatures() {
    let response = scan(EICAR.to_vec()).await;
    assert!(response.contains("FOUND"), "{response}");
    assert!(response.contains("Upload.Test.EICAR"), "{response}");
}

#[tokio::test]
async fn eicar_inside_a_zip_is_found() {
    let archive = zipped("docs/readme.com", EICAR);
    assert_eq!(&archive[..2], b"PK");
    let response = scan(archive).await;
    assert!(response.contains("FOUND"), "{response}");
}

#[tokio::test]
async fn clean_data_passes() {
    use rand::{RngCore, SeedableRng};
    let mut data = vec![0u8; 3 * CHUNK + 17];
    rand::rngs::SmallRng::seed_from_u64(42).fill_bytes(&mut data);
    let response = scan(data).await;
    assert!(
        clamav_client::clean(response.as_bytes()).unwrap(),
        "{response}"
    );
}

/// The limit and alert lines every clamd of the service runs with.
fn scan_limits() -> Vec<String> {
    include_str!("../../../deploy/clamav/scan-limits.conf")
        .lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
        .map(str::to_owned)
        .collect()
}

#[test]
fn every_clamd_of_the_service_runs_with_the_same_limits() {
    let dir = std::env::var("UPLOAD_STACK_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|_| {
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/stack")
        });
    let stack = std::fs::read_to_string(dir.join("clamd/clamd.conf"))
        .expect("clamd.conf written by the stack");
    let production = include_str!("../../../deploy/clamav/clamd.production.conf");
    for line in scan_limits() {
        assert!(
            stack.lines().any(|l| l == line),
            "the stack's clamd lacks {line:?}"
        );
        assert!(
            production.lines().any(|l| l == line),
            "production lacks {line:?}"
        );
    }
}

#[test]
fn clamd_limits_sit_above_the_largest_upload_and_a_cut_entry_is_always_reported() {
    let limits = scan_limits();
    let value = |name: &str| -> u64 {
        limits
            .iter()
            .find_map(|l| l.strip_prefix(name).map(str::trim))
            .unwrap_or_else(|| panic!("{name} is not set"))
            .trim_end_matches('M')
            .parse()
            .unwrap()
    };
    let largest_upload = upload_config::UploadPolicyConfig::from_source(
        &std::collections::HashMap::<String, String>::new(),
    )
    .unwrap()
    .premium_limit_bytes;
    for limit in ["StreamMaxLength", "MaxFileSize", "MaxScanSize"] {
        assert!(
            value(limit) * 1024 * 1024 > largest_upload,
            "{limit} is not above {largest_upload} bytes"
        );
    }
    // clamd reads no file over 2 GiB - 1 and cuts larger entries in silence: the
    // project's signatures report entries that declare 2 GiB or more, so
    // MaxFileSize must reach that far.
    assert_eq!(value("MaxFileSize"), 2047);
    // The largest upload and what it unpacks to, if it is an archive of
    // incompressible files, are read whole.
    assert!(value("MaxScanSize") * 1024 * 1024 >= 2 * largest_upload);
    for alert in ["AlertExceedsMax yes", "AlertEncrypted yes"] {
        assert!(limits.iter().any(|l| l == alert), "{alert}");
    }
}

#[tokio::test]
async fn eicar_in_a_zip64_entry_is_reported_not_skipped() {
    // Deflated behind padding, so the raw bytes never show the test string.
    let mut padded = vec![b' '; 4096];
    padded.extend_from_slice(EICAR);
    let archive = upload_e2e::archives::deflated_zip("setup.com", &padded, true);
    assert!(!archive.windows(5).any(|w| w == b"EICAR"), "compressed");
    let response = scan(archive).await;
    assert!(response.contains("Upload.Unscannable.Zip64"), "{response}");
    // The control: the same file in an ordinary zip is unpacked and found.
    let response = scan(upload_e2e::archives::deflated_zip(
        "setup.com",
        &padded,
        false,
    ))
    .await;
    assert!(response.contains("EICAR"), "{response}");
}

#[tokio::test]
async fn a_zip_header_lookalike_in_binary_data_is_not_flagged() {
    // Random bytes hold `PK\x03\x04` about once in every 4 GiB; what follows it
    // must look like a real header before the project's signatures speak.
    use rand::RngCore;
    let mut data = vec![0u8; 2 * CHUNK];
    rand::rng().fill_bytes(&mut data);
    let mut lookalike = b"PK\x03\x04".to_vec();
    lookalike.extend_from_slice(&[0xab; 18]);
    lookalike.extend_from_slice(&[0x90, 0xff, 0xff, 0xff, 0xff]);
    data.splice(5000..5000, lookalike);
    let response = scan(data).await;
    assert!(
        clamav_client::clean(response.as_bytes()).unwrap(),
        "{response}"
    );
}

#[tokio::test]
async fn clamd_reports_the_version_of_the_test_database() {
    let addr = stack_env().remove("UPLOAD_CLAMD_ADDR").expect("clamd");
    let version = upload_worker::clamd::version(
        &upload_config::ClamdAddr::Tcp(addr),
        std::time::Duration::from_secs(10),
    )
    .await
    .expect("VERSION");
    assert!(version.engine.starts_with("ClamAV 1."), "{version}");
    assert_eq!(version.signatures, 1, "database A is version 1");
}
