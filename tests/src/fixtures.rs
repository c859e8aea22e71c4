//! Files and processes the pipeline tests need: small files from bytes, videos and
//! images made with the real ffmpeg, a clamd of the test's own, and a webhook
//! receiver.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::sync::mpsc;

/// The EICAR test file, 68 bytes.
pub const EICAR: &[u8] = br"X5O!P%@AP[4\PZX54(P^)7CC)7}$EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*";

/// A zip archive holding `content` as `name`, stored uncompressed.
pub fn zipped(name: &str, content: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut zip = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let options =
        zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Stored);
    zip.start_file(name, options).expect("zip entry");
    zip.write_all(content).expect("zip content");
    zip.finish().expect("zip finish").into_inner()
}

/// What ffprobe says about a local file: (duration in seconds, width, height, codec).
pub fn probe(path: &Path) -> (f64, u32, u32, String) {
    let out = Command::new("/usr/bin/ffprobe")
        .args([
            "-v",
            "error",
            "-print_format",
            "json",
            "-show_format",
            "-show_streams",
        ])
        .arg(path)
        .output()
        .expect("ffprobe runs");
    assert!(
        out.status.success(),
        "ffprobe could not read {}: {}",
        path.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("ffprobe json");
    let video = v["streams"]
        .as_array()
        .and_then(|s| s.iter().find(|s| s["codec_type"] == "video"))
        .cloned()
        .unwrap_or_default();
    let duration = v["format"]["duration"]
        .as_str()
        .and_then(|d| d.parse().ok())
        .unwrap_or(0.0);
    (
        duration,
        video["width"].as_u64().unwrap_or(0) as u32,
        video["height"].as_u64().unwrap_or(0) as u32,
        video["codec_name"].as_str().unwrap_or_default().to_owned(),
    )
}

/// Decodes every frame of a local media file; true when ffmpeg reports no error.
pub fn decodes(path: &Path) -> bool {
    Command::new("/usr/bin/ffmpeg")
        .args(["-v", "error", "-xerror", "-i"])
        .arg(path)
        .args(["-f", "null", "-"])
        .stdout(Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false)
}

/// A free loopback port (nothing listens on it once this returns), chosen at random
/// below the kernel's ephemeral range and reserved for the rest of this process.
///
/// Below that range, because a port from it can be taken, between this answer and
/// the server's bind, as the local port of an outgoing connection (the suites open
/// thousands, to the store and the database). Reserved, because nextest runs each
/// test in a process of its own and a port is bound a while after it is chosen (a
/// clamd binds after loading its signatures, seconds later): two processes handed
/// the same port failed with "Address already in use". The reservation is a lock on
/// a file named for the port, held until the process exits.
pub fn free_port() -> u16 {
    use rand::Rng;
    const LOWEST: u16 = 10_000;
    let ephemeral = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse::<u16>().ok())
        .unwrap_or(32_768);
    if ephemeral > LOWEST + 1_000 {
        let mut rng = rand::rng();
        for _ in 0..200 {
            let port = rng.random_range(LOWEST..ephemeral);
            if reserve(port) && std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
                return port;
            }
        }
    }
    loop {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .expect("a free port");
        if reserve(port) {
            return port;
        }
    }
}

/// Takes `port` for this process unless another test process (or an earlier call
/// of this one) holds it.
fn reserve(port: u16) -> bool {
    static HELD: std::sync::Mutex<Vec<std::fs::File>> = std::sync::Mutex::new(Vec::new());
    let dir = std::env::temp_dir().join("upload-e2e-ports");
    let lock = std::fs::create_dir_all(&dir).and_then(|()| {
        std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(dir.join(port.to_string()))
    });
    // Each open is a lock of its own, so a port this process already holds is
    // refused too.
    let file = lock.unwrap_or_else(|e| panic!("port reservations in {}: {e}", dir.display()));
    match file.try_lock() {
        Ok(()) => {
            HELD.lock().unwrap_or_else(|e| e.into_inner()).push(file);
            true
        }
        Err(std::fs::TryLockError::WouldBlock) => false,
        Err(std::fs::TryLockError::Error(e)) => panic!("locking port {port}'s reservation: {e}"),
    }
}

/// A clamd of the test's own on a loopback port, with the project's signatures
/// (database A, version 1) in a directory of its own, and the limits every clamd
/// of the service runs with; killed when dropped.
pub struct Clamd {
    child: Child,
    dir: tempfile::TempDir,
    port: u16,
}

/// The project's ClamAV files (`deploy/clamav`).
fn clamav_dir() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/clamav")
}

/// The second test signature database (version 2): database A plus a signature
/// for [`RESCAN_MARKER`].
pub fn signatures_b() -> std::path::PathBuf {
    clamav_dir().join("testdb-b")
}

/// Database C (version 3): database B's findings again, under newer signatures.
pub fn signatures_c() -> std::path::PathBuf {
    clamav_dir().join("testdb-c")
}

/// Database D (version 4): EICAR and [`RESCAN_MARKER`] found under new names
/// (`...-Revised`): other findings than B's.
pub fn signatures_d() -> std::path::PathBuf {
    clamav_dir().join("testdb-d")
}

/// Database E (version 3): database A's signatures again; [`RESCAN_MARKER`] is
/// found by nothing.
pub fn signatures_e() -> std::path::PathBuf {
    clamav_dir().join("testdb-e")
}

/// A harmless string that only database B knows as malware.
pub const RESCAN_MARKER: &[u8] = b"UPLOAD-SERVICE-RESCAN-TEST-MARKER";

impl Clamd {
    /// Starts clamd on `port` and waits until it answers PING.
    pub async fn start(port: u16) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let db = dir.path().join("db");
        std::fs::create_dir(&db).expect("signature directory");
        for file in ["testdb/daily.cud", "upload-unscannable.ndb"] {
            let from = clamav_dir().join(file);
            std::fs::copy(&from, db.join(from.file_name().expect("a file name")))
                .expect("copy the test signatures");
        }
        let limits =
            std::fs::read_to_string(clamav_dir().join("scan-limits.conf")).expect("scan limits");
        let conf = dir.path().join("clamd.conf");
        std::fs::write(
            &conf,
            format!(
                "Foreground yes\nTCPSocket {port}\nTCPAddr 127.0.0.1\nDatabaseDirectory {}\n\
                 LogFile {}\nMaxThreads 2\n{limits}",
                db.display(),
                dir.path().join("clamd.log").display()
            ),
        )
        .expect("write clamd.conf");
        let child = Command::new("/usr/sbin/clamd")
            .arg("-c")
            .arg(&conf)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("clamd runs (the stack installs it)");
        let clamd = Self { child, dir, port };
        let addr = format!("127.0.0.1:{port}");
        for _ in 0..200 {
            let tcp = clamav_client::tokio::Tcp {
                host_address: addr.as_str(),
            };
            if let Ok(pong) = clamav_client::tokio::ping(tcp).await
                && pong == clamav_client::PONG
            {
                return clamd;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("clamd on {addr} did not answer PING");
    }

    /// The address workers are given (`UPLOAD_CLAMD_ADDR`).
    pub fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// The signature version clamd reports.
    pub async fn signature_version(&self) -> i64 {
        upload_worker::clamd::version(
            &upload_config::ClamdAddr::Tcp(self.addr()),
            Duration::from_secs(10),
        )
        .await
        .expect("clamd's version")
        .signatures
    }

    /// Replaces the signature database with the one in `from` (as freshclam
    /// would), tells clamd to RELOAD, and waits until it reports the new version.
    pub async fn switch_signatures(&self, from: &Path) {
        let before = self.signature_version().await;
        std::fs::copy(from.join("daily.cud"), self.dir.path().join("db/daily.cud"))
            .expect("copy the new signatures");
        let mut conn = tokio::net::TcpStream::connect(self.addr())
            .await
            .expect("clamd");
        tokio::io::AsyncWriteExt::write_all(&mut conn, b"zRELOAD\0")
            .await
            .expect("RELOAD");
        for _ in 0..200 {
            if self.signature_version().await != before {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("clamd still reports signatures {before} after RELOAD");
    }
}

impl Drop for Clamd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One request a webhook received.
#[derive(Debug, Clone)]
pub struct HookRequest {
    /// Header names (lower case) and values.
    pub headers: Vec<(String, String)>,
    /// The body.
    pub body: Vec<u8>,
}

impl HookRequest {
    /// A header's value.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// A webhook receiver on a loopback port that hands the requests to the test and
/// answers 200, or 500 to the first `failures` requests.
pub struct HookListener {
    /// `http://127.0.0.1:PORT/hooks/uploads`.
    pub url: String,
    /// The requests, as they arrive.
    pub requests: mpsc::UnboundedReceiver<HookRequest>,
    task: tokio::task::JoinHandle<()>,
}

impl HookListener {
    /// Starts listening; every request succeeds.
    pub async fn start() -> Self {
        Self::start_failing(0).await
    }

    /// Starts listening; the first `failures` requests get a 500.
    pub async fn start_failing(failures: usize) -> Self {
        Self::start_answering(failures, None).await
    }

    /// Starts listening; every request is answered 307 to `location`.
    pub async fn start_redirecting(location: &str) -> Self {
        Self::start_answering(0, Some(location.to_owned())).await
    }

    async fn start_answering(failures: usize, redirect: Option<String>) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind webhook listener");
        let url = format!(
            "http://{}/hooks/uploads",
            listener.local_addr().expect("local addr")
        );
        let (tx, requests) = mpsc::unbounded_channel();
        let left = Arc::new(std::sync::atomic::AtomicUsize::new(failures));
        let task = tokio::spawn(async move {
            while let Ok((socket, _)) = listener.accept().await {
                let tx = tx.clone();
                let left = Arc::clone(&left);
                let redirect = redirect.clone();
                tokio::spawn(async move {
                    let _ = serve_one(socket, tx, left, redirect).await;
                });
            }
        });
        Self {
            url,
            requests,
            task,
        }
    }
}

impl Drop for HookListener {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn serve_one(
    socket: tokio::net::TcpStream,
    tx: mpsc::UnboundedSender<HookRequest>,
    failures_left: Arc<std::sync::atomic::AtomicUsize>,
    redirect: Option<String>,
) -> std::io::Result<()> {
    use std::sync::atomic::Ordering;
    let mut reader = BufReader::new(socket);
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).await? == 0 {
            return Ok(());
        }
        let mut headers = Vec::new();
        loop {
            let mut h = String::new();
            reader.read_line(&mut h).await?;
            let h = h.trim_end();
            if h.is_empty() {
                break;
            }
            if let Some((n, v)) = h.split_once(':') {
                headers.push((n.trim().to_ascii_lowercase(), v.trim().to_owned()));
            }
        }
        let len = headers
            .iter()
            .find(|(n, _)| n == "content-length")
            .and_then(|(_, v)| v.parse::<usize>().ok())
            .unwrap_or(0);
        let mut body = vec![0; len];
        reader.read_exact(&mut body).await?;
        let _ = tx.send(HookRequest { headers, body });
        let fail = failures_left
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok();
        let response = match (&redirect, fail) {
            (Some(location), _) => format!(
                "HTTP/1.1 307 Temporary Redirect\r\nlocation: {location}\r\ncontent-length: 0\r\n\r\n"
            ),
            (None, true) => {
                "HTTP/1.1 500 Internal Server Error\r\ncontent-length: 0\r\n\r\n".into()
            }
            (None, false) => "HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n".into(),
        };
        reader.get_mut().write_all(response.as_bytes()).await?;
    }
}

/// Checks an `x-upload-signature` header (`t=...,v1=...`) against `body` and `secret`.
pub fn signature_valid(header: &str, body: &[u8], secret: &str) -> bool {
    use hmac::{KeyInit, Mac};
    let mut t = None;
    let mut v1 = None;
    for part in header.split(',') {
        match part.split_once('=') {
            Some(("t", value)) => t = Some(value),
            Some(("v1", value)) => v1 = hex::decode(value).ok(),
            _ => {}
        }
    }
    let (Some(t), Some(v1)) = (t, v1) else {
        return false;
    };
    let Ok(mut mac) = hmac::Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()) else {
        return false;
    };
    mac.update(t.as_bytes());
    mac.update(b".");
    mac.update(body);
    mac.verify_slice(&v1).is_ok()
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_port_handed_out_is_not_handed_out_again_while_its_process_lives() {
        let port = super::free_port();
        assert!(!super::reserve(port), "port {port} reserved twice");
        let others: Vec<u16> = (0..50).map(|_| super::free_port()).collect();
        assert!(!others.contains(&port), "{port} handed out again");
    }
}
