//! The clamd the stack starts, with the signature database the project ships:
//! EICAR is found raw and inside a zip over INSTREAM; clean data passes; and the
//! limits sit above the largest upload with AlertExceedsMax on.

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

#[test]
fn clamd_limits_sit_above_the_largest_upload_and_alert_when_exceeded() {
    let dir = std::env::var("UPLOAD_STACK_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|_| {
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/stack")
        });
    let conf = std::fs::read_to_string(dir.join("clamd/clamd.conf"))
        .expect("clamd.conf written by the stack");
    let largest_upload = upload_config::UploadPolicyConfig::from_source(
        &std::collections::HashMap::<String, String>::new(),
    )
    .unwrap()
    .premium_limit_bytes;
    for limit in ["StreamMaxLength", "MaxFileSize", "MaxScanSize"] {
        let value = conf
            .lines()
            .find_map(|l| l.strip_prefix(limit).map(str::trim))
            .unwrap_or_else(|| panic!("{limit} is not set"));
        let mib: u64 = value.trim_end_matches('M').parse().unwrap();
        assert!(
            mib * 1024 * 1024 > largest_upload,
            "{limit} {value} is not above {largest_upload} bytes"
        );
    }
    assert!(conf.lines().any(|l| l.trim() == "AlertExceedsMax yes"));
}
