//! Files tests upload: random bytes (a fresh seed each run, printed so a failure
//! can be replayed), given bytes, and media made by the real ffmpeg.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;

/// A file of random bytes, written in blocks, with its MD5 and SHA-256.
pub struct TestFile {
    /// Where it is.
    pub path: PathBuf,
    /// Its size.
    pub size: u64,
    /// Hex MD5.
    pub md5_hex: String,
    /// Hex SHA-256.
    pub sha256_hex: String,
    _dir: Arc<tempfile::TempDir>,
}

impl TestFile {
    /// Writes `size` random bytes from a fresh seed, printed so that a failure can
    /// be replayed with [`TestFile::random_seeded`]. No two runs share a file.
    pub fn random(size: u64) -> Self {
        let seed = rand::random::<u64>();
        eprintln!("TestFile::random({size}): seed {seed}");
        Self::random_seeded(size, seed)
    }

    /// Writes `size` random bytes (a fresh seed), then `tail`.
    pub fn random_with_tail(size: u64, tail: &[u8]) -> Self {
        let file = Self::random(size);
        {
            use std::io::Write;
            let mut out = std::fs::OpenOptions::new()
                .append(true)
                .open(&file.path)
                .expect("reopen the test file");
            out.write_all(tail).expect("append the tail");
        }
        let (size, md5_hex, sha256_hex) = digest_file(&file.path);
        Self {
            size,
            md5_hex,
            sha256_hex,
            ..file
        }
    }

    /// Writes `size` random bytes from `seed`.
    pub fn random_seeded(size: u64, seed: u64) -> Self {
        Self::random_named("product.bin", size, seed)
    }

    /// Writes `size` random bytes from `seed` to a file called `name`.
    pub fn random_named(name: &str, size: u64, seed: u64) -> Self {
        use md5::Digest;
        use rand::{RngCore, SeedableRng};
        use std::io::Write;
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join(name);
        let mut out =
            std::io::BufWriter::new(std::fs::File::create(&path).expect("create test file"));
        let mut rng = rand::rngs::SmallRng::seed_from_u64(seed);
        let mut md5 = md5::Md5::new();
        let mut sha = sha2::Sha256::new();
        let mut block = vec![0u8; 1 << 20];
        let mut left = size;
        while left > 0 {
            let n = usize::try_from(left.min(block.len() as u64)).unwrap_or(block.len());
            rng.fill_bytes(&mut block[..n]);
            md5.update(&block[..n]);
            sha.update(&block[..n]);
            out.write_all(&block[..n]).expect("write test file");
            left -= n as u64;
        }
        out.flush().expect("flush test file");
        Self {
            path,
            size,
            md5_hex: hex::encode(md5.finalize()),
            sha256_hex: hex::encode(sha.finalize()),
            _dir: Arc::new(dir),
        }
    }
}

fn digest_file(path: &Path) -> (u64, String, String) {
    use md5::Digest;
    use std::io::Read;
    let mut file = std::fs::File::open(path).expect("reading the test file");
    let (mut md5, mut sha) = (md5::Md5::new(), sha2::Sha256::new());
    let mut block = vec![0u8; 1 << 20];
    let mut size = 0u64;
    loop {
        let n = file.read(&mut block).expect("reading the test file");
        if n == 0 {
            break;
        }
        md5.update(&block[..n]);
        sha.update(&block[..n]);
        size += n as u64;
    }
    (
        size,
        hex::encode(md5.finalize()),
        hex::encode(sha.finalize()),
    )
}

impl TestFile {
    /// A zip archive (entries stored, not compressed) of one entry of `size` random
    /// bytes: an honest `.zip` for tests that store packs, since a file declared or
    /// named as a zip must be one.
    pub fn random_zip(size: u64) -> Self {
        let inner = Self::random(size);
        let bytes = std::fs::read(&inner.path).expect("reading the random bytes");
        Self::from_bytes("pack.zip", &crate::zipped("data.bin", &bytes))
    }
}

impl TestFile {
    /// A file holding `bytes`, named `name`.
    pub fn from_bytes(name: &str, bytes: &[u8]) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join(name);
        std::fs::write(&path, bytes).expect("write test file");
        Self::at(path, dir)
    }

    fn at(path: PathBuf, dir: tempfile::TempDir) -> Self {
        let (size, md5_hex, sha256_hex) = digest_file(&path);
        Self {
            path,
            size,
            md5_hex,
            sha256_hex,
            _dir: Arc::new(dir),
        }
    }

    /// An MP4 (H.264 + AAC) of `seconds` at `width`×`height`, made by ffmpeg from
    /// its test pattern and a tone.
    pub fn video(seconds: u32, width: u32, height: u32) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("trailer.mp4");
        ffmpeg(&[
            "-f",
            "lavfi",
            "-i",
            &format!("testsrc2=duration={seconds}:size={width}x{height}:rate=25"),
            "-f",
            "lavfi",
            "-i",
            &format!("sine=frequency=440:duration={seconds}"),
            "-c:v",
            "libx264",
            "-preset",
            "ultrafast",
            "-pix_fmt",
            "yuv420p",
            "-c:a",
            "aac",
            "-shortest",
            &path.to_string_lossy(),
        ]);
        Self::at(path, dir)
    }

    /// A PNG of `width`×`height`, made by ffmpeg.
    pub fn image(width: u32, height: u32) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("cover.png");
        ffmpeg(&[
            "-f",
            "lavfi",
            "-i",
            &format!("testsrc2=size={width}x{height}"),
            "-frames:v",
            "1",
            &path.to_string_lossy(),
        ]);
        Self::at(path, dir)
    }
}

fn ffmpeg(args: &[&str]) {
    let status = Command::new("/usr/bin/ffmpeg")
        .args(["-v", "error", "-y"])
        .args(args)
        .status()
        .expect("ffmpeg runs (the stack installs it)");
    assert!(status.success(), "ffmpeg {args:?} failed");
}
