//! A fault-injecting HTTP proxy between the services and the store, on 127.0.0.1:
//! on a share of requests it resets the connection, answers 503 SlowDown or 500
//! InternalError, stalls past the client's time-out, or cuts the response body
//! half-way. Everything else goes through untouched (the Host header too, so
//! signatures still hold).

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, StreamBody, combinators::BoxBody};
use hyper::body::{Frame, Incoming};
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use rand::{Rng, SeedableRng};
use tokio::net::{TcpListener, TcpStream};

/// What the proxy does to a request it faults.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Fault {
    /// Drops the connection without an answer.
    Reset,
    /// Answers 503 SlowDown (the store asks to back off).
    SlowDown,
    /// Answers 500 InternalError.
    InternalError,
    /// Holds the request past the client's time-out, then passes it on.
    Stall,
    /// Passes the request on, then cuts the answer's body half-way.
    CutBody,
}

impl Fault {
    /// Every fault, in the order the proxy takes turns with them.
    pub const ALL: [Fault; 5] = [
        Fault::Reset,
        Fault::SlowDown,
        Fault::InternalError,
        Fault::Stall,
        Fault::CutBody,
    ];
}

/// Which requests are faulted, and how.
#[derive(Debug, Clone)]
pub struct FaultRules {
    /// The share of requests faulted, from 0 to 1.
    pub share: f64,
    /// The faults taken in turn.
    pub faults: Vec<Fault>,
    /// How long a stalled request is held.
    pub stall: Duration,
    /// Seeds the choice of requests (printed, to replay a run).
    pub seed: u64,
}

impl FaultRules {
    /// `share` of requests faulted, every kind of fault in turn, stalls of `stall`.
    pub fn every_kind(share: f64, stall: Duration) -> Self {
        Self {
            share,
            faults: Fault::ALL.to_vec(),
            stall,
            seed: rand::random(),
        }
    }
}

/// What went through the proxy.
#[derive(Debug, Default)]
pub struct FaultStats {
    /// Requests received.
    pub requests: AtomicU64,
    faulted: Mutex<HashMap<Fault, u64>>,
}

impl FaultStats {
    /// Faults injected, by kind.
    pub fn faulted(&self) -> HashMap<Fault, u64> {
        self.faulted
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Faults injected in all.
    pub fn faults(&self) -> u64 {
        self.faulted().values().sum()
    }
}

/// A running fault proxy; stops when dropped.
pub struct StoreFaults {
    /// Where clients connect.
    pub addr: SocketAddr,
    /// Its counters.
    pub stats: Arc<FaultStats>,
    outage: Arc<std::sync::atomic::AtomicBool>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for StoreFaults {
    fn drop(&mut self) {
        self.task.abort();
    }
}

type ProxyBody = BoxBody<Bytes, std::io::Error>;

struct Shared {
    upstream: SocketAddr,
    rules: FaultRules,
    rng: Mutex<rand::rngs::StdRng>,
    turn: AtomicU64,
    stats: Arc<FaultStats>,
    /// While set, the store is away: every request answers 503.
    outage: Arc<std::sync::atomic::AtomicBool>,
}

impl StoreFaults {
    /// Starts a proxy to the store at `upstream_url` (`http://127.0.0.1:port`).
    pub async fn start(upstream_url: &str, rules: FaultRules) -> Self {
        let upstream: SocketAddr = upstream_url
            .trim_start_matches("http://")
            .trim_end_matches('/')
            .parse()
            .expect("the store endpoint is http://<ip>:<port>");
        assert!(
            upstream.ip().is_loopback(),
            "the proxy only forwards to loopback"
        );
        eprintln!("store faults: {rules:?}");
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind proxy");
        let addr = listener.local_addr().expect("proxy address");
        let stats = Arc::new(FaultStats::default());
        let outage = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let shared = Arc::new(Shared {
            outage: Arc::clone(&outage),
            upstream,
            rng: Mutex::new(rand::rngs::StdRng::seed_from_u64(rules.seed)),
            rules,
            turn: AtomicU64::new(0),
            stats: Arc::clone(&stats),
        });
        let task = tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let shared = Arc::clone(&shared);
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(move |req| {
                        let shared = Arc::clone(&shared);
                        async move { handle(&shared, req).await }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(client), service)
                        .await;
                });
            }
        });
        Self {
            addr,
            stats,
            outage,
            task,
        }
    }

    /// The proxy's URL, for `UPLOAD_S3_ENDPOINT`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Takes the store away (every request answers 503 ServiceUnavailable) or
    /// brings it back.
    pub fn set_outage(&self, away: bool) {
        self.outage.store(away, Ordering::SeqCst);
    }
}

fn s3_error(status: u16, code: &str, message: &str) -> Response<ProxyBody> {
    let body = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Error><Code>{code}</Code><Message>{message}</Message></Error>"
    );
    let mut response = Response::new(
        Full::new(Bytes::from(body))
            .map_err(|never: Infallible| match never {})
            .boxed(),
    );
    *response.status_mut() = hyper::StatusCode::from_u16(status).unwrap_or_default();
    response.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("application/xml"),
    );
    response
}

/// The fault for the next request, if it is to be faulted.
fn choose(shared: &Shared) -> Option<Fault> {
    let roll: f64 = shared
        .rng
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .random();
    if roll >= shared.rules.share || shared.rules.faults.is_empty() {
        return None;
    }
    let turn = shared.turn.fetch_add(1, Ordering::SeqCst) as usize;
    Some(shared.rules.faults[turn % shared.rules.faults.len()])
}

async fn handle(shared: &Shared, req: Request<Incoming>) -> Result<Response<ProxyBody>, String> {
    shared.stats.requests.fetch_add(1, Ordering::SeqCst);
    if shared.outage.load(Ordering::SeqCst) {
        return Ok(s3_error(503, "ServiceUnavailable", "The store is away."));
    }
    let fault = choose(shared);
    if let Some(fault) = fault {
        *shared
            .stats
            .faulted
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .entry(fault)
            .or_default() += 1;
    }
    match fault {
        Some(Fault::Reset) => return Err("reset by the fault proxy".into()),
        Some(Fault::SlowDown) => {
            return Ok(s3_error(
                503,
                "SlowDown",
                "Please reduce your request rate.",
            ));
        }
        Some(Fault::InternalError) => {
            return Ok(s3_error(
                500,
                "InternalError",
                "We encountered an internal error. Please try again.",
            ));
        }
        Some(Fault::Stall) => tokio::time::sleep(shared.rules.stall).await,
        Some(Fault::CutBody) | None => {}
    }
    let response = forward(shared.upstream, req).await?;
    if fault != Some(Fault::CutBody) {
        return Ok(response.map(|b| b.map_err(std::io::Error::other).boxed()));
    }
    let (parts, body) = response.into_parts();
    let bytes = body.collect().await.map_err(|e| e.to_string())?.to_bytes();
    if bytes.len() < 2 {
        // Nothing to cut (a HEAD, an empty answer): drop the connection instead.
        return Err("reset by the fault proxy".into());
    }
    let half = bytes.slice(..bytes.len() / 2);
    let frames = futures::stream::iter([
        Ok(Frame::data(half)),
        Err(std::io::Error::other("body cut by the fault proxy")),
    ]);
    Ok(Response::from_parts(parts, StreamBody::new(frames).boxed()))
}

async fn forward(
    upstream: SocketAddr,
    req: Request<Incoming>,
) -> Result<Response<Incoming>, String> {
    let stream = TcpStream::connect(upstream)
        .await
        .map_err(|e| e.to_string())?;
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|e| e.to_string())?;
    tokio::spawn(async move {
        let _ = conn.await;
    });
    sender.send_request(req).await.map_err(|e| e.to_string())
}
