//! Sending parts: read and hash ahead, sign in batches, PUT in parallel, retry with
//! backoff, re-sign what expired.
//!
//! One task reads each part once to hash it (two parts at a time, in order) and
//! signs the digests in batches (the first batch is one part, so the first PUT starts
//! at once; batches double up to `sign_batch`). `concurrency` slots take signed parts,
//! read the part again (from the page cache, as a rule) and PUT it. Memory is one
//! part per slot and a block per part being hashed (see `buffers`), whatever the
//! file's size.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime};

use futures::StreamExt;
use tokio::sync::{Mutex, mpsc};

use crate::retry::Backoff;
use crate::{ClientError, UploadClient, pb};

/// Options for sending parts.
#[derive(Debug, Clone, Copy)]
pub struct SendOptions {
    /// Parts in flight at once.
    pub concurrency: usize,
    /// Attempts per part on network errors and 5xx answers before giving up.
    pub attempts: u32,
    /// The most parts signed in one `SignParts` call.
    pub sign_batch: usize,
    /// Delays between attempts.
    pub backoff: Backoff,
    /// A URL that expires within this margin is signed again before it is used.
    pub resign_margin: Duration,
}

impl Default for SendOptions {
    fn default() -> Self {
        Self {
            concurrency: 4,
            attempts: 5,
            sign_batch: 64,
            backoff: Backoff::default(),
            resign_margin: Duration::from_secs(10),
        }
    }
}

/// What sending parts did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct SendStats {
    /// Parts sent successfully.
    pub parts_sent: u64,
    /// Bytes of those parts.
    pub bytes_sent: u64,
    /// PUTs that failed on the network or with a 5xx and were tried again.
    pub retries: u64,
    /// Parts signed again because their URL expired or was about to.
    pub resigned: u64,
}

/// Something that happened while sending, for a progress display or a log.
#[derive(Debug, Clone)]
pub enum Event {
    /// The store holds this part now.
    PartSent {
        /// The part number.
        part: u32,
        /// Its length.
        bytes: u64,
    },
    /// A PUT failed and will be tried again after `delay`.
    Retrying {
        /// The part number.
        part: u32,
        /// The attempt that comes next (2 for the first retry).
        attempt: u32,
        /// The wait before it.
        delay: Duration,
        /// What went wrong.
        error: String,
    },
    /// A part's URL expired (or was about to) and was signed again.
    Resigned {
        /// The part number.
        part: u32,
        /// Why.
        reason: &'static str,
    },
}

/// Parts hashed at once, ahead of the PUTs.
const HASHING_AT_ONCE: usize = 2;

/// A part ready to PUT.
struct SignedPart {
    number: u32,
    offset: u64,
    len: u64,
    md5: Vec<u8>,
    url: String,
    headers: Vec<(String, String)>,
    signed_at: SystemTime,
    expires_at: Option<SystemTime>,
}

/// How far this machine's clock and the store's may disagree on a URL's expiry.
const CLOCK_SLACK: Duration = Duration::from_secs(1);

impl SignedPart {
    /// Whether the URL's expiry has passed, or lies within `slack` of now.
    fn expired_by(&self, slack: Duration) -> bool {
        self.expires_at
            .is_some_and(|at| at <= SystemTime::now() + slack)
    }

    /// Whether the URL runs out within `margin`, or within a quarter of its life when
    /// that is shorter (so a URL fresh from the server is never "about to expire").
    fn expiring(&self, margin: Duration) -> bool {
        let Some(at) = self.expires_at else {
            return false;
        };
        let life = at.duration_since(self.signed_at).unwrap_or_default();
        at <= SystemTime::now() + margin.min(life / 4)
    }
}

/// Where part `number` lies in the file.
pub fn part_range(upload: &pb::Upload, number: u32) -> Result<(u64, u64), ClientError> {
    if number == 0 || number > upload.part_count {
        return Err(ClientError::Part {
            part: number,
            reason: format!("this upload has parts 1 to {}", upload.part_count),
        });
    }
    let offset = u64::from(number - 1) * upload.part_size_bytes;
    let len = upload
        .part_size_bytes
        .min(upload.size_bytes.saturating_sub(offset));
    Ok((offset, len))
}

fn part_error(part: u32, reason: impl ToString) -> ClientError {
    ClientError::Part {
        part,
        reason: reason.to_string(),
    }
}

fn signed_part(
    number: u32,
    offset: u64,
    len: u64,
    md5: Vec<u8>,
    signed: pb::SignedPart,
) -> SignedPart {
    SignedPart {
        number,
        offset,
        len,
        md5,
        url: signed.url,
        headers: signed
            .headers
            .into_iter()
            .map(|h| (h.name, h.value))
            .collect(),
        signed_at: SystemTime::now(),
        expires_at: signed.expires_at.and_then(|t| {
            let secs = u64::try_from(t.seconds).ok()?;
            let nanos = u32::try_from(t.nanos).ok()?;
            Some(SystemTime::UNIX_EPOCH + Duration::new(secs, nanos))
        }),
    }
}

impl UploadClient {
    /// Signs `parts` (number, offset, length, MD5) in one call.
    async fn sign(
        &self,
        upload_id: &str,
        parts: Vec<(u32, u64, u64, Vec<u8>)>,
    ) -> Result<Vec<SignedPart>, ClientError> {
        let request = pb::SignPartsRequest {
            upload_id: upload_id.to_owned(),
            parts: parts
                .iter()
                .map(|(number, _, len, md5)| pb::PartToSign {
                    checksum_sha256: Vec::new(),
                    part_number: *number,
                    content_md5: md5.clone(),
                    content_length: *len,
                })
                .collect(),
        };
        let signed = self.api().sign_parts(request).await?.into_inner().parts;
        if signed.len() != parts.len() {
            return Err(ClientError::Rpc(tonic::Status::internal(format!(
                "asked to sign {} parts, got {}",
                parts.len(),
                signed.len()
            ))));
        }
        let mut out = Vec::with_capacity(parts.len());
        let mut by_number: std::collections::HashMap<u32, pb::SignedPart> =
            signed.into_iter().map(|s| (s.part_number, s)).collect();
        for (number, offset, len, md5) in parts {
            let s = by_number
                .remove(&number)
                .ok_or_else(|| part_error(number, "the server did not sign it"))?;
            out.push(signed_part(number, offset, len, md5, s));
        }
        Ok(out)
    }

    /// Sends the given parts of `file`, reporting every event to `observe`.
    pub async fn send_parts_observed(
        &self,
        upload: &pb::Upload,
        file: &Path,
        parts: &[u32],
        options: SendOptions,
        observe: impl Fn(&Event) + Send + Sync + 'static,
    ) -> Result<SendStats, ClientError> {
        let handle = Arc::new(std::fs::File::open(file)?);
        let size = handle.metadata()?.len();
        if size != upload.size_bytes {
            return Err(ClientError::FileChanged(format!(
                "the upload is for {} bytes but the file has {size}",
                upload.size_bytes
            )));
        }
        let observe: Arc<dyn Fn(&Event) + Send + Sync> = Arc::new(observe);
        let concurrency = options.concurrency.max(1);
        let (tx, rx) = mpsc::channel::<SignedPart>(options.sign_batch.max(concurrency) * 2);
        let rx = Arc::new(Mutex::new(rx));
        let stats = Arc::new(Counters::default());
        let mut tasks = tokio::task::JoinSet::new();

        // The hasher and signer.
        {
            let client = self.clone();
            let upload = upload.clone();
            let parts = parts.to_vec();
            let handle = Arc::clone(&handle);
            tasks.spawn(async move {
                // The first batch is one part, so the first PUT starts after one part is
                // hashed; batches double from there. Two parts are hashed at once (in
                // order), so hashing keeps ahead of the PUTs on a busy machine.
                let mut batch_size = 1;
                let mut pending = Vec::new();
                let total = parts.len();
                let mut hashed = futures::stream::iter(parts.into_iter().map(|number| {
                    let handle = Arc::clone(&handle);
                    let range = part_range(&upload, number);
                    async move {
                        let (offset, len) = range?;
                        let md5 = crate::buffers::md5_of(&handle, offset, len)
                            .await
                            .map_err(ClientError::Io)?;
                        Ok::<_, ClientError>((number, offset, len, md5))
                    }
                }))
                .buffered(HASHING_AT_ONCE);
                let mut done = 0;
                while let Some(part) = hashed.next().await {
                    pending.push(part?);
                    done += 1;
                    if pending.len() >= batch_size || done == total {
                        let signed = client
                            .sign(&upload.upload_id, std::mem::take(&mut pending))
                            .await?;
                        for part in signed {
                            if tx.send(part).await.is_err() {
                                // The senders stopped on an error; theirs is returned.
                                return Ok(());
                            }
                        }
                        batch_size = (batch_size * 2).min(options.sign_batch.max(1));
                    }
                }
                Ok::<_, ClientError>(())
            });
        }

        let buffers = crate::buffers::Pool::default();
        for _ in 0..concurrency {
            let buffers = buffers.clone();
            let client = self.clone();
            let rx = Arc::clone(&rx);
            let handle = Arc::clone(&handle);
            let observe = Arc::clone(&observe);
            let stats = Arc::clone(&stats);
            let upload_id = upload.upload_id.clone();
            tasks.spawn(async move {
                loop {
                    let next = rx.lock().await.recv().await;
                    let Some(part) = next else { break };
                    let number = part.number;
                    let len = usize::try_from(part.len).map_err(|e| part_error(number, e))?;
                    let body = buffers
                        .read(&handle, part.offset, len)
                        .await
                        .map_err(ClientError::Io)?;
                    client
                        .put_part(&upload_id, part, body, options, &stats, &*observe)
                        .await?;
                }
                Ok::<_, ClientError>(())
            });
        }

        while let Some(joined) = tasks.join_next().await {
            let result = joined.map_err(|e| part_error(0, e)).and_then(|r| r);
            if let Err(e) = result {
                tasks.abort_all();
                return Err(e);
            }
        }
        Ok(stats.snapshot())
    }

    /// PUTs one part, retrying network errors and 5xx answers with backoff and signing
    /// again when its URL has expired.
    async fn put_part(
        &self,
        upload_id: &str,
        mut part: SignedPart,
        body: bytes::Bytes,
        options: SendOptions,
        stats: &Counters,
        observe: &(dyn Fn(&Event) + Send + Sync),
    ) -> Result<(), ClientError> {
        let number = part.number;
        let mut failures = 0u32;
        let mut resigns = 0u32;
        // After the store refused this part, the connection that carried the refusal
        // may be closing (Garage closes it without reading the body) while it still
        // sits in the pool: the next PUT goes on a new connection.
        let mut refused = false;
        loop {
            if part.expiring(options.resign_margin) {
                part = self
                    .resign(upload_id, part, "expires soon", stats, observe)
                    .await?;
            }
            // The body goes in blocks of the part's memory; its length is stated, so
            // the store gets a plain length-delimited PUT, not a chunked one.
            let http = if refused {
                self.http_fresh()
            } else {
                &self.http
            };
            let mut req = http.put(&part.url).body(crate::buffers::body(&body));
            let mut has_length = false;
            for (name, value) in &part.headers {
                has_length |= name.eq_ignore_ascii_case("content-length");
                req = req.header(name.as_str(), value.as_str());
            }
            if !has_length {
                req = req.header(reqwest::header::CONTENT_LENGTH, part.len);
            }
            let error = match req.send().await {
                Ok(res) if res.status().is_success() => {
                    stats.parts.fetch_add(1, Ordering::Relaxed);
                    stats.bytes.fetch_add(part.len, Ordering::Relaxed);
                    observe(&Event::PartSent {
                        part: number,
                        bytes: part.len,
                    });
                    return Ok(());
                }
                Ok(res) if res.status().is_server_error() => {
                    refused = true;
                    format!("the store answered {}", res.status())
                }
                Ok(res) => {
                    let status = res.status();
                    let text = res.text().await.unwrap_or_default();
                    if expired(status, &text, part.expires_at) && resigns < 3 {
                        resigns += 1;
                        refused = true;
                        part = self
                            .resign(upload_id, part, "expired", stats, observe)
                            .await?;
                        continue;
                    }
                    return Err(part_error(number, refusal(status, &text)));
                }
                // A store refusing an expired URL may answer before it reads the body
                // and close the connection, so the client sees a broken pipe, not the
                // answer. If the URL has expired by this machine's clock (give or take
                // the clocks' difference), sign again: that is no failure.
                Err(_) if part.expired_by(CLOCK_SLACK) && resigns < 3 => {
                    resigns += 1;
                    refused = true;
                    part = self
                        .resign(upload_id, part, "expired", stats, observe)
                        .await?;
                    continue;
                }
                Err(e) => describe(&e),
            };
            failures += 1;
            if failures >= options.attempts.max(1) {
                return Err(part_error(
                    number,
                    format!("{error} (gave up after {failures} attempts)"),
                ));
            }
            let delay = options.backoff.delay(failures, rand::random());
            stats.retries.fetch_add(1, Ordering::Relaxed);
            tracing::warn!(part = number, attempt = failures + 1, delay_ms = delay.as_millis() as u64, %error, "retrying part");
            observe(&Event::Retrying {
                part: number,
                attempt: failures + 1,
                delay,
                error,
            });
            tokio::time::sleep(delay).await;
        }
    }

    async fn resign(
        &self,
        upload_id: &str,
        part: SignedPart,
        reason: &'static str,
        stats: &Counters,
        observe: &(dyn Fn(&Event) + Send + Sync),
    ) -> Result<SignedPart, ClientError> {
        let number = part.number;
        let mut fresh = self
            .sign(upload_id, vec![(number, part.offset, part.len, part.md5)])
            .await?;
        stats.resigned.fetch_add(1, Ordering::Relaxed);
        tracing::info!(part = number, reason, "signed the part again");
        observe(&Event::Resigned {
            part: number,
            reason,
        });
        fresh
            .pop()
            .ok_or_else(|| part_error(number, "the server did not sign it"))
    }
}

/// Whether a refusal means the URL's time ran out. S3 answers 403 "Request has
/// expired"; Garage answers 400 "Date is too old". A 400 or 403 for a URL whose expiry
/// has passed by this machine's clock counts too.
fn expired(status: reqwest::StatusCode, body: &str, expires_at: Option<SystemTime>) -> bool {
    if status != reqwest::StatusCode::FORBIDDEN && status != reqwest::StatusCode::BAD_REQUEST {
        return false;
    }
    let body = body.to_ascii_lowercase();
    body.contains("expired")
        || body.contains("too old")
        || expires_at.is_some_and(|at| at <= SystemTime::now())
}

fn refusal(status: reqwest::StatusCode, body: &str) -> String {
    let code = between(body, "<Code>", "</Code>");
    let message = between(body, "<Message>", "</Message>");
    match (code, message) {
        (Some("BadDigest"), _) => {
            "the store found different bytes than were hashed: the file changed during the upload"
                .to_owned()
        }
        (Some(code), Some(message)) => format!("the store refused it ({status} {code}: {message})"),
        _ => format!("the store refused it ({status})"),
    }
}

fn between<'a>(text: &'a str, open: &str, close: &str) -> Option<&'a str> {
    let start = text.find(open)? + open.len();
    let end = text[start..].find(close)? + start;
    Some(&text[start..end])
}

/// A network error in a few words, with its cause.
fn describe(e: &reqwest::Error) -> String {
    let mut text = if e.is_connect() {
        "cannot connect to the store".to_owned()
    } else if e.is_timeout() {
        "the store did not answer in time".to_owned()
    } else {
        "the connection to the store failed".to_owned()
    };
    let mut source = std::error::Error::source(e);
    while let Some(inner) = source {
        text.push_str(": ");
        text.push_str(&inner.to_string());
        source = inner.source();
    }
    text
}

#[derive(Default)]
struct Counters {
    parts: AtomicU64,
    bytes: AtomicU64,
    retries: AtomicU64,
    resigned: AtomicU64,
}

impl Counters {
    fn snapshot(&self) -> SendStats {
        SendStats {
            parts_sent: self.parts.load(Ordering::Relaxed),
            bytes_sent: self.bytes.load(Ordering::Relaxed),
            retries: self.retries.load(Ordering::Relaxed),
            resigned: self.resigned.load(Ordering::Relaxed),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn upload(size: u64, part: u64) -> pb::Upload {
        pb::Upload {
            size_bytes: size,
            part_size_bytes: part,
            part_count: u32::try_from(size.div_ceil(part)).unwrap(),
            ..Default::default()
        }
    }

    #[test]
    fn parts_cover_the_file_and_the_last_is_short() {
        let u = upload(25, 10);
        assert_eq!(part_range(&u, 1).unwrap(), (0, 10));
        assert_eq!(part_range(&u, 3).unwrap(), (20, 5));
        assert!(part_range(&u, 0).is_err());
        assert!(part_range(&u, 4).is_err());
    }

    #[test]
    fn a_url_is_expiring_within_the_margin_or_a_quarter_of_its_life() {
        let now = SystemTime::now();
        let part = |life: u64, left: u64| SignedPart {
            number: 1,
            offset: 0,
            len: 1,
            md5: vec![],
            url: String::new(),
            headers: vec![],
            signed_at: now + Duration::from_secs(left) - Duration::from_secs(life),
            expires_at: Some(now + Duration::from_secs(left)),
        };
        let margin = Duration::from_secs(10);
        assert!(!part(900, 600).expiring(margin));
        assert!(part(900, 5).expiring(margin));
        // A 2 s URL fresh from the server is not re-signed at once, however large the margin.
        assert!(!part(2, 2).expiring(margin));
        assert!(part(2, 0).expiring(margin));
        // A connection closed within the clocks' slack of the expiry is the expiry.
        assert!(part(4, 0).expired_by(CLOCK_SLACK));
        assert!(!part(4, 3).expired_by(CLOCK_SLACK));
    }

    #[test]
    fn store_refusals_read_as_sentences() {
        let body = "<Error><Code>BadDigest</Code><Message>x</Message></Error>";
        assert!(refusal(reqwest::StatusCode::BAD_REQUEST, body).contains("file changed"));
        let body = "<Error><Code>AccessDenied</Code><Message>Forbidden: Signature mismatch</Message></Error>";
        assert_eq!(
            refusal(reqwest::StatusCode::FORBIDDEN, body),
            "the store refused it (403 Forbidden AccessDenied: Forbidden: Signature mismatch)"
        );
        let forbidden = reqwest::StatusCode::FORBIDDEN;
        let later = Some(SystemTime::now() + Duration::from_secs(60));
        assert!(expired(
            forbidden,
            "<Message>Request has expired</Message>",
            later
        ));
        assert!(expired(
            reqwest::StatusCode::BAD_REQUEST,
            "<Message>Bad request: Date is too old</Message>",
            later
        ));
        assert!(expired(forbidden, body, Some(SystemTime::now())));
        assert!(!expired(forbidden, body, later));
        assert!(!expired(reqwest::StatusCode::NOT_FOUND, "expired", None));
    }
}
