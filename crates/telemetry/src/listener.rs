//! The `/metrics` listener: HTTP/1.1 on its own address, answering GET /metrics
//! with the text `render` makes on each scrape (404 for every other path).

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;

use bytes::Bytes;
use http_body_util::Full;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;

/// Makes the scrape's text (it may read the database first).
pub type Render = Arc<dyn Fn() -> Pin<Box<dyn Future<Output = String> + Send>> + Send + Sync>;

/// A running `/metrics` listener; stops when dropped.
pub struct MetricsListener {
    /// Where it listens.
    pub addr: SocketAddr,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for MetricsListener {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// The content type of the Prometheus text format.
const TEXT_FORMAT: &str = "text/plain; version=0.0.4; charset=utf-8";

impl MetricsListener {
    /// Serves `render` on `listener`.
    pub fn serve(listener: TcpListener, render: Render) -> std::io::Result<Self> {
        let addr = listener.local_addr()?;
        let task = tokio::spawn(async move {
            loop {
                let (stream, _) = match listener.accept().await {
                    Ok(accepted) => accepted,
                    Err(e) => {
                        tracing::warn!(error = %e, "metrics listener: accept failed");
                        continue;
                    }
                };
                let render = Arc::clone(&render);
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(move |req: Request<_>| {
                        let render = Arc::clone(&render);
                        async move { Ok::<_, std::convert::Infallible>(answer(&req, &render).await) }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        Ok(Self { addr, task })
    }
}

async fn answer<B>(req: &Request<B>, render: &Render) -> Response<Full<Bytes>> {
    let mut response = if req.method() == hyper::Method::GET && req.uri().path() == "/metrics" {
        let mut ok = Response::new(Full::new(Bytes::from(render().await)));
        ok.headers_mut().insert(
            hyper::header::CONTENT_TYPE,
            hyper::header::HeaderValue::from_static(TEXT_FORMAT),
        );
        ok
    } else {
        Response::new(Full::new(Bytes::from_static(
            b"metrics are at GET /metrics\n",
        )))
    };
    if req.uri().path() != "/metrics" || req.method() != hyper::Method::GET {
        *response.status_mut() = StatusCode::NOT_FOUND;
    }
    response
}
