//! A PostgreSQL cluster of a test's own, for tests that restart or stop their
//! database: the stack's cluster is shared by every test running at once.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

/// A private cluster on a free loopback port; stopped and removed when dropped.
pub struct PrivatePostgres {
    dir: tempfile::TempDir,
    bin: PathBuf,
    port: u16,
    /// The CA certificate clients verify the cluster with, when it takes TLS alone.
    tls: Option<PathBuf>,
}

impl PrivatePostgres {
    /// Initialises and starts a cluster (trust authentication, loopback only).
    pub fn start() -> Self {
        Self::start_with(None)
    }

    /// A cluster that takes TLS connections alone, with a certificate for
    /// 127.0.0.1 that `ca` issued; its URLs ask for `sslmode=verify-full`.
    pub fn start_tls_only(ca: &upload_server::tls::DevCa) -> Self {
        Self::start_with(Some(ca))
    }

    fn start_with(ca: Option<&upload_server::tls::DevCa>) -> Self {
        let bin = pg_bin();
        let dir = tempfile::Builder::new()
            .prefix("upload-test-pg-")
            .tempdir_in("/tmp")
            .expect("a directory for the cluster");
        let data = dir.path().join("data");
        std::fs::create_dir(&data).expect("data directory");
        // initdb and pg_ctl refuse to run as root; postgres owns the cluster.
        owned_by_postgres(dir.path());
        let initdb = as_postgres(&bin.join("initdb"))
            .arg("-D")
            .arg(&data)
            .args(["-U", "postgres", "--auth=trust", "-E", "UTF8"])
            .output()
            .expect("initdb runs");
        assert!(
            initdb.status.success(),
            "initdb failed: {}",
            String::from_utf8_lossy(&initdb.stderr)
        );
        let tls = ca.map(|ca| {
            let (cert, key) = ca.server_cert(&["127.0.0.1"]).expect("a server certificate");
            std::fs::write(data.join("server.crt"), cert).expect("server.crt");
            std::fs::write(data.join("server.key"), key).expect("server.key");
            let ca_path = dir.path().join("ca.pem");
            std::fs::write(&ca_path, ca.cert_pem()).expect("ca.pem");
            let mut conf = std::fs::OpenOptions::new()
                .append(true)
                .open(data.join("postgresql.conf"))
                .expect("postgresql.conf");
            std::io::Write::write_all(&mut conf, b"\nssl = on\n").expect("ssl on");
            // Plain TCP connections are refused: only TLS gets in.
            std::fs::write(
                data.join("pg_hba.conf"),
                "local all all trust\nhostssl all all 127.0.0.1/32 trust\nhostnossl all all 127.0.0.1/32 reject\n",
            )
            .expect("pg_hba.conf");
            owned_by_postgres(dir.path());
            let status = Command::new("chmod")
                .arg("600")
                .arg(data.join("server.key"))
                .status()
                .expect("chmod");
            assert!(status.success(), "chmod of the key failed");
            ca_path
        });
        let pg = Self {
            port: crate::free_port(),
            dir,
            bin,
            tls,
        };
        pg.pg_ctl(&["start", "-w", "-t", "30"]);
        pg
    }

    /// The URL of the cluster's `postgres` database.
    pub fn admin_url(&self) -> String {
        let tls = self.tls.as_ref().map_or_else(String::new, |ca| {
            format!("?sslmode=verify-full&sslrootcert={}", ca.display())
        });
        format!("postgres://postgres@127.0.0.1:{}/postgres{tls}", self.port)
    }

    /// Restarts the cluster as an operator would (`pg_ctl restart -m fast`):
    /// every connection is cut. Returns how long it was away.
    pub fn restart(&self) -> Duration {
        let started = Instant::now();
        self.pg_ctl(&["restart", "-m", "fast", "-w", "-t", "30"]);
        started.elapsed()
    }

    /// Stops the cluster (`-m immediate`, as a crash would).
    pub fn stop(&self) {
        self.pg_ctl(&["stop", "-m", "immediate", "-w", "-t", "30"]);
    }

    /// Starts a stopped cluster again.
    pub fn resume(&self) {
        self.pg_ctl(&["start", "-w", "-t", "30"]);
    }

    fn pg_ctl(&self, args: &[&str]) {
        let data = self.dir.path().join("data");
        let log = self.dir.path().join("postgres.log");
        let out = as_postgres(&self.bin.join("pg_ctl"))
            .arg("-D")
            .arg(&data)
            .arg("-l")
            .arg(&log)
            .args(["-o", &self.options()])
            .args(args)
            .output()
            .expect("pg_ctl runs");
        assert!(
            out.status.success(),
            "pg_ctl {args:?} failed: {}\n{}",
            String::from_utf8_lossy(&out.stderr),
            std::fs::read_to_string(&log).unwrap_or_default()
        );
    }

    /// `synchronous_commit` stays on, as in production: a commit the service was
    /// told of must survive the `-m immediate` stop (a crash of PostgreSQL). With it
    /// off, the last commits before the stop were lost after an answer had gone out
    /// (a SubmitItem answered OK whose submission then never existed). `fsync=off`
    /// only risks what an operating-system crash would lose, which no test causes.
    fn options(&self) -> String {
        format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1 -c max_connections=200 -c fsync=off",
            self.port,
            self.dir.path().display()
        )
    }
}

impl Drop for PrivatePostgres {
    fn drop(&mut self) {
        let data = self.dir.path().join("data");
        let _ = as_postgres(&self.bin.join("pg_ctl"))
            .arg("-D")
            .arg(&data)
            .args(["stop", "-m", "immediate", "-w"])
            .output();
    }
}

/// Hands `dir` to the postgres user when this process is root.
fn owned_by_postgres(dir: &Path) {
    if is_root() {
        let status = Command::new("chown")
            .args(["-R", "postgres:postgres"])
            .arg(dir)
            .status()
            .expect("chown");
        assert!(status.success(), "chown of {} failed", dir.display());
    }
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

/// `program`, run as the postgres user when this process is root.
fn as_postgres(program: &Path) -> Command {
    if is_root() {
        let mut command = Command::new("runuser");
        command
            .current_dir("/")
            .args(["-u", "postgres", "--"])
            .arg(program);
        command
    } else {
        Command::new(program)
    }
}

/// The newest installed PostgreSQL's programs.
fn pg_bin() -> PathBuf {
    let mut found: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .expect("PostgreSQL is installed (the stack installs it)")
        .filter_map(Result::ok)
        .map(|e| e.path().join("bin"))
        .filter(|p| p.join("initdb").exists())
        .collect();
    found.sort();
    found.pop().expect("an initdb under /usr/lib/postgresql")
}
