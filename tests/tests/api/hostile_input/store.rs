//! Signed part URLs misused straight against the store: a body or header other
//! than the signed one, the URL moved to another part, upload or object, its
//! signature or lifetime altered, or replayed once its upload is completed,
//! aborted or its time is up. The store refuses each, and nothing it holds changes.

use std::time::{Duration, SystemTime};

use md5::Digest;
use upload_domain::SellerGroup;
use upload_e2e::{AppOptions, MIB, TestApp, TestFile, pb};

use super::{Case, refuse_all, store_case};

/// A signed part as the test holds it.
#[derive(Clone)]
struct Signed {
    url: String,
    headers: Vec<(String, String)>,
    expires_at: SystemTime,
}

impl Signed {
    fn of(part: pb::SignedPart) -> Self {
        let at = part.expires_at.expect("an expiry");
        Self {
            url: part.url,
            headers: part
                .headers
                .into_iter()
                .map(|h| (h.name, h.value))
                .collect(),
            expires_at: SystemTime::UNIX_EPOCH
                + Duration::new(u64::try_from(at.seconds).unwrap(), 0),
        }
    }

    fn without(&self, header: &str) -> Self {
        let mut s = self.clone();
        s.headers.retain(|(n, _)| !n.eq_ignore_ascii_case(header));
        s
    }

    fn with_header(&self, header: &str, value: &str) -> Self {
        let mut s = self.without(header);
        s.headers.push((header.to_owned(), value.to_owned()));
        s
    }

    /// The URL with query parameter `name` set to `value`.
    fn with_query(&self, name: &str, value: &str) -> Self {
        let mut url = reqwest::Url::parse(&self.url).unwrap();
        let pairs: Vec<(String, String)> = url
            .query_pairs()
            .map(|(k, v)| {
                let v = if k == name {
                    value.to_owned()
                } else {
                    v.into_owned()
                };
                (k.into_owned(), v)
            })
            .collect();
        url.query_pairs_mut().clear().extend_pairs(pairs);
        Self {
            url: url.to_string(),
            ..self.clone()
        }
    }

    fn query(&self, name: &str) -> String {
        reqwest::Url::parse(&self.url)
            .unwrap()
            .query_pairs()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.into_owned())
            .unwrap_or_default()
    }

    /// The URL with its path (the object's key) swapped for `other`'s.
    fn at_path_of(&self, other: &Signed) -> Self {
        let mut url = reqwest::Url::parse(&self.url).unwrap();
        url.set_path(reqwest::Url::parse(&other.url).unwrap().path());
        Self {
            url: url.to_string(),
            ..self.clone()
        }
    }

    /// Sends `body` with `method` over a connection of its own and reads the
    /// store's answer even when the store refuses before the body is through (an
    /// HTTP client would report only the broken pipe). `Content-Length` is the
    /// body's own; every other header is sent as held.
    async fn send(self, method: &str, body: Vec<u8>) -> (u16, String) {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let url = reqwest::Url::parse(&self.url).unwrap();
        let host = format!("{}:{}", url.host_str().unwrap(), url.port().unwrap());
        let target = match url.query() {
            Some(q) => format!("{}?{q}", url.path()),
            None => url.path().to_owned(),
        };
        let mut head = format!(
            "{method} {target} HTTP/1.1\r\nhost: {host}\r\ncontent-length: {}\r\nconnection: close\r\n",
            body.len()
        );
        for (name, value) in &self.headers {
            if !name.eq_ignore_ascii_case("content-length") && !name.eq_ignore_ascii_case("host") {
                head.push_str(&format!("{name}: {value}\r\n"));
            }
        }
        head.push_str("\r\n");
        let stream = tokio::net::TcpStream::connect(&host)
            .await
            .expect("the store listens");
        let (mut reader, mut writer) = stream.into_split();
        let sending = tokio::spawn(async move {
            // The store may answer and close before the body is through.
            let _ = writer.write_all(head.as_bytes()).await;
            let _ = writer.write_all(&body).await;
            writer
        });
        let mut answer = Vec::new();
        let read =
            tokio::time::timeout(Duration::from_secs(30), reader.read_to_end(&mut answer)).await;
        let _ = sending.await;
        read.expect("the store answers within 30 s").ok();
        let text = String::from_utf8_lossy(&answer).into_owned();
        let status = text
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| panic!("not an HTTP answer: {text:?}"));
        let body = text
            .split_once("\r\n\r\n")
            .map(|(_, b)| b.to_owned())
            .unwrap_or_default();
        (status, body)
    }

    async fn put(self, body: Vec<u8>) -> (u16, String) {
        self.send("PUT", body).await
    }
}

fn content_md5(body: &[u8]) -> String {
    upload_client::content_md5(body)
}

async fn sign(
    client: &upload_client::UploadClient,
    upload: &pb::Upload,
    number: u32,
    body: &[u8],
) -> Signed {
    let part = client
        .api()
        .sign_part(pb::SignPartRequest {
            upload_id: upload.upload_id.clone(),
            part: Some(pb::PartToSign {
                checksum_sha256: Vec::new(),
                part_number: number,
                content_md5: md5::Md5::digest(body).to_vec(),
                content_length: body.len() as u64,
            }),
        })
        .await
        .expect("SignPart")
        .into_inner()
        .part
        .expect("a signed part");
    Signed::of(part)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signed_part_urls_misused_against_the_store_change_nothing() {
    const EXPIRY_SECS: u64 = 30;
    let app = TestApp::spawn_with(AppOptions {
        worker: false,
        env: vec![("UPLOAD_SIGN_EXPIRY_SECS".into(), EXPIRY_SECS.to_string())],
        ..Default::default()
    })
    .await;
    let client = app.client("seller-a", SellerGroup::Standard).await;
    let file = TestFile::random(12 * MIB);
    let bytes = std::fs::read(&file.path).unwrap();
    let (p1, p2) = (
        bytes[..5 * MIB as usize].to_vec(),
        bytes[5 * MIB as usize..10 * MIB as usize].to_vec(),
    );
    let swapped: Vec<u8> = p1.iter().map(|b| b ^ 0xff).collect();

    let open = client
        .create("a.bin", 12 * MIB, "application/octet-stream", Some(5 * MIB))
        .await
        .unwrap();
    let other = client
        .create("o.bin", 12 * MIB, "application/octet-stream", Some(5 * MIB))
        .await
        .unwrap();
    let one = sign(&client, &open, 1, &p1).await;
    let two = sign(&client, &open, 2, &p2).await;
    let others = sign(&client, &other, 1, &p1).await;

    // An upload completed, and one aborted, each after its one part was sent.
    let small = bytes[..MIB as usize].to_vec();
    let completed = client
        .create("c.bin", MIB, "application/octet-stream", None)
        .await
        .unwrap();
    let completed_url = sign(&client, &completed, 1, &small).await;
    assert_eq!(completed_url.clone().put(small.clone()).await.0, 200);
    client
        .complete(&completed.upload_id)
        .await
        .expect("CompleteUpload");
    app.expect_unfinished_jobs(1); // its scan, with no worker to run it
    let aborted = client
        .create("b.bin", MIB, "application/octet-stream", None)
        .await
        .unwrap();
    let aborted_url = sign(&client, &aborted, 1, &small).await;
    assert_eq!(aborted_url.clone().put(small.clone()).await.0, 200);
    client.abort(&aborted.upload_id).await.expect("AbortUpload");

    let forbidden = 403;
    let mut cases: Vec<Case> = Vec::new();
    let mut push = |name: &str, status: u16, words: &[&str], call: Signed, body: Vec<u8>| {
        cases.push(store_case(name, status, words, call.put(body)));
    };
    push(
        "a swapped body of the signed length",
        400,
        &["BadDigest"],
        one.clone(),
        swapped.clone(),
    );
    push(
        "the body of another part",
        400,
        &["BadDigest"],
        one.clone(),
        p2.clone(),
    );
    push(
        "Content-MD5 dropped",
        400,
        &["content-md5", "not present"],
        one.without("content-md5"),
        p1.clone(),
    );
    push(
        "Content-MD5 of the swapped body",
        forbidden,
        &["Signature"],
        one.with_header("content-md5", &content_md5(&swapped)),
        swapped.clone(),
    );
    push(
        "a body one byte short",
        forbidden,
        &["Signature"],
        one.without("content-length"),
        p1[1..].to_vec(),
    );
    push(
        "a body one byte long",
        forbidden,
        &["Signature"],
        one.without("content-length"),
        [p1.clone(), vec![0]].concat(),
    );
    push(
        "an empty body",
        forbidden,
        &["Signature"],
        one.without("content-length"),
        Vec::new(),
    );
    push(
        "moved to part 2",
        forbidden,
        &["Signature"],
        one.with_query("partNumber", "2"),
        p2.clone(),
    );
    push(
        "moved to part 3",
        forbidden,
        &["Signature"],
        one.with_query("partNumber", "3"),
        p1.clone(),
    );
    push(
        "moved to another upload",
        forbidden,
        &["Signature"],
        one.with_query("uploadId", &others.query("uploadId")),
        p1.clone(),
    );
    push(
        "moved to another object",
        forbidden,
        &["Signature"],
        one.at_path_of(&others),
        p1.clone(),
    );
    push(
        "lifetime stretched to a week",
        forbidden,
        &["Signature"],
        one.with_query("X-Amz-Expires", "604800"),
        p1.clone(),
    );
    push(
        "dated in 2099",
        400,
        &["AuthorizationHeaderMalformed", "unexpected scope"],
        one.with_query("X-Amz-Date", "20991231T000000Z"),
        p1.clone(),
    );
    let mut flipped = one.query("X-Amz-Signature");
    let last = if flipped.pop() == Some('0') { '1' } else { '0' };
    flipped.push(last);
    push(
        "one signature digit changed",
        forbidden,
        &["Signature"],
        one.with_query("X-Amz-Signature", &flipped),
        p1.clone(),
    );
    let credential = one.query("X-Amz-Credential");
    let (_, scope) = credential.split_once('/').unwrap();
    push(
        "another access key",
        forbidden,
        &["AccessDenied", "No such key: GK0000000000000000000000"],
        one.with_query(
            "X-Amz-Credential",
            &format!("GK0000000000000000000000/{scope}"),
        ),
        p1.clone(),
    );
    push(
        "signed headers narrowed to host",
        forbidden,
        &["Signature"],
        one.with_query("X-Amz-SignedHeaders", "host"),
        p1.clone(),
    );
    push(
        "replayed after the upload completed",
        404,
        &["NoSuchUpload"],
        completed_url.clone(),
        small.clone(),
    );
    push(
        "replayed after the upload was aborted",
        404,
        &["NoSuchUpload"],
        aborted_url.clone(),
        small.clone(),
    );
    cases.push(store_case(
        "used as a GET",
        forbidden,
        &["Signature"],
        one.clone().send("GET", Vec::new()),
    ));
    cases.push(store_case(
        "used as a DELETE",
        forbidden,
        &["Signature"],
        one.clone().send("DELETE", Vec::new()),
    ));
    // Last: the URL as signed, once its time is up.
    let late = two.clone();
    cases.push(store_case(
        "used after it expired",
        400,
        &["Date is too old"],
        async move {
            let wait = late
                .expires_at
                .duration_since(SystemTime::now())
                .unwrap_or_default();
            tokio::time::sleep(wait + Duration::from_secs(2)).await;
            late.put(p2).await
        },
    ));
    let refused = refuse_all(&app, "store", cases).await;
    assert!(refused >= 20, "{refused}");

    // The positive control: a URL rebuilt with nothing changed, signed afresh,
    // takes its part (so the refusals above came from what each case changed).
    let fresh = sign(&client, &open, 1, &p1).await;
    let rebuilt = fresh.with_query("partNumber", "1");
    let (status, body) = rebuilt.put(p1).await;
    assert_eq!(status, 200, "{body}");
}
