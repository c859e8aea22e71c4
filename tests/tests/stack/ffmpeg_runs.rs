//! How the worker runs ffmpeg (real ffmpeg, no stack needed): a run past its time
//! limit is killed, a run whose job is dropped is killed, and no more runs than
//! the limit are alive at once.

use std::collections::{HashMap, HashSet};
use std::time::Duration;
use upload_config::MediaConfig;
use upload_worker::media::{Media, MediaError};

fn media(timeout_secs: u32, concurrency: u32) -> Media {
    let env: HashMap<String, String> = [
        (
            "UPLOAD_MEDIA_TIMEOUT_SECS".to_string(),
            timeout_secs.to_string(),
        ),
        (
            "UPLOAD_MEDIA_CONCURRENCY".to_string(),
            concurrency.to_string(),
        ),
    ]
    .into();
    Media::new(MediaConfig::from_source(&env).expect("media config"))
}

/// Live ffmpeg processes whose command line carries `marker`.
fn running(marker: &str) -> HashSet<u32> {
    let mut found = HashSet::new();
    for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let cmdline = std::fs::read(entry.path().join("cmdline")).unwrap_or_default();
        // A killed but unreaped process has an empty command line: not running.
        if String::from_utf8_lossy(&cmdline).contains(marker) {
            found.insert(pid);
        }
    }
    found
}

/// An ffmpeg run that encodes a test pattern in real time for `seconds` (or
/// forever), tagged with `marker` so the test can find its process.
fn args(marker: &str, seconds: Option<f32>) -> Vec<String> {
    let mut a: Vec<String> = ["-re", "-f", "lavfi", "-i", "testsrc=size=64x64:rate=25"]
        .map(String::from)
        .into();
    if let Some(s) = seconds {
        a.extend(["-t".into(), s.to_string()]);
    }
    a.extend(["-metadata".into(), format!("comment={marker}")]);
    a.extend(["-f", "null", "-"].map(String::from));
    a
}

async fn wait_until(mut check: impl FnMut() -> bool, what: &str) {
    for _ in 0..200 {
        if check() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("timed out waiting until {what}");
}

#[tokio::test]
async fn a_run_past_its_time_limit_is_stopped_and_reported() {
    let marker = format!("limit-{}", uuid::Uuid::now_v7());
    let err = media(1, 1)
        .ffmpeg(&std::env::temp_dir(), &args(&marker, None))
        .await
        .expect_err("an endless run cannot succeed");
    assert!(matches!(err, MediaError::Timeout { .. }), "{err}");
    assert!(err.to_string().contains("did not finish"), "{err}");
    assert!(running(&marker).is_empty(), "the process was killed");
}

#[tokio::test]
async fn a_run_whose_job_is_dropped_is_killed() {
    let marker = format!("dropped-{}", uuid::Uuid::now_v7());
    let m = media(600, 1);
    let run_args = args(&marker, None);
    let task = tokio::spawn(async move { m.ffmpeg(&std::env::temp_dir(), &run_args).await });
    wait_until(|| !running(&marker).is_empty(), "ffmpeg started").await;
    task.abort();
    let _ = task.await;
    wait_until(|| running(&marker).is_empty(), "ffmpeg was killed").await;
}

#[tokio::test]
async fn no_more_runs_than_the_limit_are_alive_at_once() {
    let marker = format!("limit1-{}", uuid::Uuid::now_v7());
    let m = media(60, 1);
    let runs = (0..3).map(|_| {
        let m = m.clone();
        let a = args(&marker, Some(0.6));
        tokio::spawn(async move { m.ffmpeg(&std::env::temp_dir(), &a).await })
    });
    let runs: Vec<_> = runs.collect();
    let mut most = 0;
    let mut seen = HashSet::new();
    while runs.iter().any(|r| !r.is_finished()) {
        let now = running(&marker);
        most = most.max(now.len());
        seen.extend(now);
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    for r in runs {
        r.await.unwrap().expect("each run succeeds");
    }
    assert_eq!(most, 1, "never two at once");
    assert_eq!(seen.len(), 3, "all three ran, one after another");
}

#[tokio::test]
async fn a_failing_run_reports_ffmpegs_own_error() {
    let err = media(60, 1)
        .ffmpeg(
            &std::env::temp_dir(),
            &["-i", "/nonexistent/input.mp4", "-f", "null", "-"].map(String::from),
        )
        .await
        .expect_err("no such input");
    match err {
        MediaError::Failed { message, .. } => {
            assert!(message.contains("No such file"), "{message}")
        }
        other => panic!("expected a failed run, got {other}"),
    }
}

#[tokio::test]
async fn a_run_gets_an_empty_environment_and_a_memory_limit() {
    let dir = tempfile::tempdir().unwrap();
    let report = dir.path().join("seen");
    let tool = dir.path().join("ffmpeg");
    // Stands in for ffmpeg: writes down what it was started with.
    std::fs::write(
        &tool,
        format!(
            "#!/bin/sh\n{{ env; echo \"limit=$(ulimit -v)\"; }} > {}\n",
            report.display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&tool, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let env: HashMap<String, String> = [
        ("UPLOAD_FFMPEG_PATH", tool.to_string_lossy().into_owned()),
        ("UPLOAD_MEDIA_MEMORY_BYTES", (512u64 << 20).to_string()),
    ]
    .map(|(k, v)| (k.to_string(), v))
    .into();
    let media = Media::new(MediaConfig::from_source(&env).unwrap());
    media
        .ffmpeg(&std::env::temp_dir(), &["-version".to_owned()])
        .await
        .expect("the stand-in runs");
    let seen = std::fs::read_to_string(&report).unwrap();
    // The test's own environment (PATH, HOME, CARGO_*) did not reach it.
    assert!(std::env::var("PATH").is_ok() && std::env::var("CARGO_MANIFEST_DIR").is_ok());
    for inherited in ["PATH=", "HOME=", "CARGO"] {
        assert!(
            !seen.lines().any(|l| l.starts_with(inherited)),
            "{inherited} reached the tool:\n{seen}"
        );
    }
    assert!(seen.contains(&format!("limit={}", 512 * 1024)), "{seen}");
}

#[tokio::test]
async fn a_picture_over_the_pixel_limit_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let big = dir.path().join("big.png");
    let made = std::process::Command::new("/usr/bin/ffmpeg")
        .args([
            "-v",
            "error",
            "-f",
            "lavfi",
            "-i",
            "testsrc2=size=2000x1000",
        ])
        .args(["-frames:v", "1"])
        .arg(&big)
        .status()
        .unwrap();
    assert!(made.success());
    let env: HashMap<String, String> =
        [("UPLOAD_MEDIA_MAX_PIXELS".to_string(), "1000000".to_string())].into();
    let media = Media::new(MediaConfig::from_source(&env).unwrap());
    let mut args: Vec<String> = media.input_args(&big.to_string_lossy(), "png_pipe,image2");
    args.extend(["-f", "null", "-"].map(String::from));
    match media.ffmpeg(&std::env::temp_dir(), &args).await {
        Err(MediaError::Failed { message, .. }) => {
            assert!(message.contains("max pixel"), "{message}")
        }
        other => panic!("a 2-megapixel picture passed a 1-megapixel limit: {other:?}"),
    }
    // The same picture within the limit decodes.
    let env: HashMap<String, String> =
        [("UPLOAD_MEDIA_MAX_PIXELS".to_string(), "3000000".to_string())].into();
    let media = Media::new(MediaConfig::from_source(&env).unwrap());
    let mut args: Vec<String> = media.input_args(&big.to_string_lossy(), "png_pipe,image2");
    args.extend(["-f", "null", "-"].map(String::from));
    media
        .ffmpeg(&std::env::temp_dir(), &args)
        .await
        .expect("within the limit");
}

#[tokio::test]
async fn the_tools_read_a_file_only_with_the_demuxers_of_its_sniffed_type() {
    let dir = tempfile::tempdir().unwrap();
    let png = dir.path().join("frame");
    let made = std::process::Command::new("/usr/bin/ffmpeg")
        .args(["-v", "error", "-f", "lavfi", "-i", "testsrc2=size=64x48"])
        .args(["-frames:v", "1", "-f", "image2", "-c:v", "png"])
        .arg(&png)
        .status()
        .unwrap();
    assert!(made.success());
    let env: HashMap<String, String> = HashMap::new();
    let media = Media::new(MediaConfig::from_source(&env).unwrap());
    let path = png.to_string_lossy();
    let as_png = upload_domain::demuxers("image/png").unwrap();
    let report = media
        .probe(&path, as_png)
        .await
        .expect("a PNG read as a PNG");
    assert_eq!((report.width, report.height), (Some(64), Some(48)));
    // The same bytes, had they sniffed as an MP4 or an MP3: no demuxer of those
    // reads them, and none other is tried.
    for other in ["video/mp4", "audio/mpeg"] {
        let formats = upload_domain::demuxers(other).unwrap();
        match media.probe(&path, formats).await {
            Err(MediaError::Failed { message, .. }) => assert!(
                message.contains("whitelist") || message.contains("Invalid data"),
                "{other}: {message}"
            ),
            found => panic!("a PNG was read with the {other} demuxers: {found:?}"),
        }
        let mut args = media.input_args(&path, formats);
        args.extend(["-f", "null", "-"].map(String::from));
        assert!(
            media.ffmpeg(&std::env::temp_dir(), &args).await.is_err(),
            "ffmpeg read a PNG as {other}"
        );
    }
}
