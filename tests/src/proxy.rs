//! A TCP proxy between a client and the store (or PostgreSQL), on 127.0.0.1: it
//! counts the bytes the client sends, and can cut connections, hold them back, or
//! freeze them (silent forever, never closed, as behind a NAT that forgot them),
//! as a bad network does.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// How the proxy misbehaves.
#[derive(Debug, Clone, Copy, Default)]
pub struct ProxyRules {
    /// Cut every `n`-th connection (the 1st, the n+1-th, …) once it has carried
    /// `cut_after_bytes` from the client.
    pub cut_every: Option<u64>,
    /// How far into a cut connection the cut comes.
    pub cut_after_bytes: u64,
    /// The most connections cut (0: no limit).
    pub cut_at_most: u64,
    /// Hold each of the first `delay_first` connections for `delay` before any byte
    /// goes through.
    pub delay_first: u64,
    /// How long to hold them.
    pub delay: Duration,
}

/// What went through the proxy.
#[derive(Debug, Default)]
pub struct ProxyStats {
    /// Bytes from the client to the store (request lines, headers and bodies).
    pub bytes_up: AtomicU64,
    /// Connections accepted.
    pub connections: AtomicU64,
    /// Connections cut on purpose.
    pub cuts: AtomicU64,
}

/// A running proxy; stops when dropped.
pub struct Proxy {
    /// Where clients connect.
    pub addr: SocketAddr,
    /// Its counters.
    pub stats: Arc<ProxyStats>,
    /// Bumped by [`Proxy::freeze`]: connections older than the bump go silent.
    freezes: Arc<tokio::sync::watch::Sender<u64>>,
    /// While set, new connections are held silent too.
    frozen: Arc<std::sync::atomic::AtomicBool>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Proxy {
    /// Starts a proxy to the server named by `upstream_url` (`http://127.0.0.1:port`).
    pub async fn start(upstream_url: &str, rules: ProxyRules) -> Self {
        let upstream: SocketAddr = upstream_url
            .trim_start_matches("http://")
            .trim_end_matches('/')
            .parse()
            .expect("the store endpoint is http://<ip>:<port>");
        assert!(
            upstream.ip().is_loopback(),
            "the proxy only forwards to loopback"
        );
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind proxy");
        let addr = listener.local_addr().expect("proxy address");
        let stats = Arc::new(ProxyStats::default());
        let counters = Arc::clone(&stats);
        let freezes = Arc::new(tokio::sync::watch::channel(0u64).0);
        let frozen = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let (freezes_seen, frozen_seen) = (Arc::clone(&freezes), Arc::clone(&frozen));
        let task = tokio::spawn(async move {
            let mut tasks = tokio::task::JoinSet::new();
            let mut planned_cuts = 0u64;
            while let Ok((client, _)) = listener.accept().await {
                let n = counters.connections.fetch_add(1, Ordering::SeqCst) + 1;
                let counters = Arc::clone(&counters);
                let cut = rules
                    .cut_every
                    .is_some_and(|every| (n - 1) % every.max(1) == 0)
                    && (rules.cut_at_most == 0 || planned_cuts < rules.cut_at_most);
                planned_cuts += u64::from(cut);
                let delay = (n <= rules.delay_first).then_some(rules.delay);
                let mut freeze = freezes_seen.subscribe();
                let held = frozen_seen.load(Ordering::SeqCst);
                tasks.spawn(async move {
                    if held {
                        // Accepted, then nothing: the client waits forever.
                        let _client = client;
                        return std::future::pending::<()>().await;
                    }
                    if let Some(delay) = delay {
                        tokio::time::sleep(delay).await;
                    }
                    let Ok(server) = TcpStream::connect(upstream).await else {
                        return;
                    };
                    let limit = cut.then_some(rules.cut_after_bytes);
                    let piping = pipe(client, server, limit, &counters);
                    tokio::pin!(piping);
                    // The freeze is looked at first on every wake-up: bytes that
                    // arrive after `freeze()` returned never get through.
                    tokio::select! {
                        biased;
                        _ = freeze.changed() => {
                            // Frozen: both sockets stay open, nothing moves again.
                            std::future::pending::<()>().await;
                        }
                        () = &mut piping => {}
                    }
                });
                // Reap finished connections so the set stays small.
                while tasks.try_join_next().is_some() {}
            }
        });
        Self {
            addr,
            stats,
            freezes,
            frozen,
            task,
        }
    }

    /// Freezes every open connection for good (silent, never closed) and holds new
    /// ones silent until [`Proxy::thaw`].
    pub fn freeze(&self) {
        self.frozen.store(true, Ordering::SeqCst);
        self.freezes.send_modify(|n| *n += 1);
    }

    /// Lets new connections through again; frozen ones stay frozen.
    pub fn thaw(&self) {
        self.frozen.store(false, Ordering::SeqCst);
    }

    /// The proxy's URL, for `UPLOAD_S3_PUBLIC_ENDPOINT`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Bytes the client has sent so far.
    pub fn bytes_up(&self) -> u64 {
        self.stats.bytes_up.load(Ordering::SeqCst)
    }
}

/// Copies both ways until either side closes; with a `limit`, resets both sides after
/// that many bytes from the client.
async fn pipe(client: TcpStream, server: TcpStream, limit: Option<u64>, stats: &ProxyStats) {
    let (mut client_read, mut client_write) = client.into_split();
    let (mut server_read, mut server_write) = server.into_split();
    let up = async move {
        let mut buf = vec![0u8; 64 * 1024];
        let mut sent = 0u64;
        loop {
            let n = match client_read.read(&mut buf).await {
                Ok(0) | Err(_) => return (false, server_write),
                Ok(n) => n,
            };
            if let Some(limit) = limit
                && sent + n as u64 >= limit
            {
                let keep = usize::try_from(limit - sent).unwrap_or(n).min(n);
                let _ = server_write.write_all(&buf[..keep]).await;
                stats.bytes_up.fetch_add(keep as u64, Ordering::SeqCst);
                return (true, server_write);
            }
            if server_write.write_all(&buf[..n]).await.is_err() {
                return (false, server_write);
            }
            sent += n as u64;
            stats.bytes_up.fetch_add(n as u64, Ordering::SeqCst);
        }
    };
    let down = async move {
        let _ = tokio::io::copy(&mut server_read, &mut client_write).await;
        let _ = client_write.shutdown().await;
    };
    tokio::pin!(down);
    tokio::select! {
        (cut, mut server_write) = up => {
            if cut {
                stats.cuts.fetch_add(1, Ordering::SeqCst);
                // Dropping the sockets with unread data resets them mid-request.
                return;
            }
            // The client closed its side; let the answer finish.
            let _ = server_write.shutdown().await;
            (&mut down).await;
        }
        () = &mut down => {}
    }
}
