//! Talking to clamd: a stream of blocks over INSTREAM, and the VERSION question
//! (which engine and signature database verdicts are made with). What the answers
//! mean is decided in one place, `upload_domain::classify`. Jobs reach clamd
//! through [`Clamd`], which counts and times every call.

use std::time::{Duration, Instant};

use anyhow::Context;
use bytes::Bytes;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::mpsc;
use upload_config::ClamdAddr;
use upload_domain::{ScannerAnswer, ScannerVersion};
use upload_telemetry::{CallOutcome, Dependency, DependencyCalls};

use crate::scan::BLOCK;

/// clamd as the jobs reach it: where, how long an answer may take, and where its
/// calls are counted (`VERSION`, `INSTREAM`; `no_answer` when it could not be
/// reached or did not answer in time, `failed` when it answered with an error).
#[derive(Debug, Clone)]
pub struct Clamd {
    /// Its address.
    pub addr: ClamdAddr,
    /// The longest wait for an answer.
    pub timeout: Duration,
    calls: DependencyCalls,
}

impl Clamd {
    /// clamd at `addr`, its calls counted in `calls`.
    pub fn new(addr: ClamdAddr, timeout: Duration, calls: DependencyCalls) -> Self {
        Self {
            addr,
            timeout,
            calls,
        }
    }

    /// Which engine and signatures it scans with.
    pub async fn version(&self) -> anyhow::Result<ScannerVersion> {
        self.calls
            .timed(
                Dependency::Clamd,
                "VERSION",
                CallOutcome::NoAnswer,
                version(&self.addr, self.timeout),
            )
            .await
    }

    /// Streams blocks from `rx` over INSTREAM and reads the verdict.
    pub async fn scan(&self, rx: mpsc::Receiver<Bytes>) -> anyhow::Result<ScannerAnswer> {
        let started = Instant::now();
        let (answer, outcome) = match instream(&self.addr, rx).await {
            Err(e) => (Err(e), CallOutcome::NoAnswer),
            Ok(reply) => match parse_reply(&reply) {
                Ok(answer) => (Ok(answer), CallOutcome::Ok),
                Err(why) => (Err(anyhow::Error::msg(why)), CallOutcome::Failed),
            },
        };
        self.calls
            .record(Dependency::Clamd, "INSTREAM", outcome, started.elapsed());
        answer
    }

    /// An INSTREAM begun at `started` given up on: clamd did not answer in time.
    pub fn scan_unanswered(&self, started: Instant) {
        self.calls.record(
            Dependency::Clamd,
            "INSTREAM",
            CallOutcome::NoAnswer,
            started.elapsed(),
        );
    }
}

/// Reads clamd's INSTREAM reply (`stream: OK`, `stream: Name FOUND`, `INSTREAM size
/// limit exceeded. ERROR`). Anything else is an error: a file is never taken for
/// clean unless clamd says so.
pub fn parse_reply(reply: &[u8]) -> Result<ScannerAnswer, String> {
    let text = String::from_utf8_lossy(reply);
    let text = text.trim_end_matches(['\0', '\n', ' ']);
    let body = text.strip_prefix("stream: ").unwrap_or(text);
    if body == "OK" {
        Ok(ScannerAnswer::Nothing)
    } else if let Some(name) = body.strip_suffix(" FOUND") {
        Ok(ScannerAnswer::Found(name.trim().to_owned()))
    } else if body.starts_with("INSTREAM size limit exceeded") {
        Ok(ScannerAnswer::StreamTooLong)
    } else {
        Err(format!("clamd answered {text:?}"))
    }
}

/// Streams blocks from `rx` to clamd over INSTREAM; clamd's reply, unread.
async fn instream(addr: &ClamdAddr, rx: mpsc::Receiver<Bytes>) -> anyhow::Result<Vec<u8>> {
    let blocks = futures::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|b| (Ok::<_, std::io::Error>(b), rx))
    });
    let reply = match addr {
        ClamdAddr::Tcp(host) => {
            clamav_client::tokio::scan_stream(
                blocks,
                clamav_client::tokio::Tcp {
                    host_address: host.as_str(),
                },
                Some(BLOCK),
            )
            .await
        }
        ClamdAddr::Unix(path) => {
            clamav_client::tokio::scan_stream(
                blocks,
                clamav_client::tokio::Socket {
                    socket_path: path.as_path(),
                },
                Some(BLOCK),
            )
            .await
        }
    }
    .with_context(|| format!("clamd at {addr:?} could not scan the file"))?;
    Ok(reply)
}

/// Asks clamd which engine and signature database it scans with, within `timeout`.
pub async fn version(addr: &ClamdAddr, timeout: Duration) -> anyhow::Result<ScannerVersion> {
    let ask = async {
        let mut answer = Vec::new();
        match addr {
            ClamdAddr::Tcp(host) => {
                let mut conn = tokio::net::TcpStream::connect(host.as_str()).await?;
                conn.write_all(b"zVERSION\0").await?;
                conn.take(4096).read_to_end(&mut answer).await?;
            }
            ClamdAddr::Unix(path) => {
                let mut conn = tokio::net::UnixStream::connect(path).await?;
                conn.write_all(b"zVERSION\0").await?;
                conn.take(4096).read_to_end(&mut answer).await?;
            }
        }
        anyhow::Ok(answer)
    };
    let answer = tokio::time::timeout(timeout, ask)
        .await
        .with_context(|| format!("clamd at {addr:?} did not tell its version within {timeout:?}"))?
        .with_context(|| format!("asking clamd at {addr:?} for its version"))?;
    Ok(ScannerVersion::parse(&String::from_utf8_lossy(&answer))?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clamd_replies_are_read_strictly() {
        assert_eq!(parse_reply(b"stream: OK\0"), Ok(ScannerAnswer::Nothing));
        assert_eq!(
            parse_reply(b"stream: Upload.Test.EICAR.UNOFFICIAL FOUND\0"),
            Ok(ScannerAnswer::Found("Upload.Test.EICAR.UNOFFICIAL".into()))
        );
        assert_eq!(
            parse_reply(b"stream: Heuristics.Limits.Exceeded.MaxFileSize FOUND\0"),
            Ok(ScannerAnswer::Found(
                "Heuristics.Limits.Exceeded.MaxFileSize".into()
            ))
        );
        assert_eq!(
            parse_reply(b"INSTREAM size limit exceeded. ERROR\0"),
            Ok(ScannerAnswer::StreamTooLong)
        );
        assert!(parse_reply(b"stream: lstat() failed. ERROR\0").is_err());
        assert!(parse_reply(b"").is_err());
    }
}
