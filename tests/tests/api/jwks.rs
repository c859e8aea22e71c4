//! Asymmetric tokens: the server verifies EdDSA, ES256 and RS256 tokens against
//! the issuers' JWKS by `kid`, with issuer and audience checked; HS256 is refused
//! where development did not opt in, and so is an algorithm swap; a key added to
//! the JWKS file is taken without a restart, and one removed stops working within
//! the refresh interval.

use std::time::Duration;

use tonic::Code;
use upload_domain::{Role, SellerGroup};
use upload_e2e::{AppOptions, MIB, TestApp, pb, poll_until};
use upload_server::auth::Claims;
use upload_server::auth::jwks::{SigningKey, jwks_document};

const ISSUER: &str = "https://issuer.test";
const AUDIENCE: &str = "upload-test";

fn claims(iss: &str, aud: &str) -> Claims {
    let mut claims = Claims {
        sub: Some("seller-jwks".into()),
        role: Some(Role::Seller.as_str().into()),
        group: Some(SellerGroup::Standard.as_str().into()),
        iss: Some(iss.into()),
        aud: Some(aud.to_owned().into()),
        ..Claims::default()
    };
    claims.stamp(Duration::from_secs(600)).unwrap();
    claims
}

/// CreateUpload with `token`: OK, or the refusal's code and message.
async fn create_with(app: &TestApp, token: &str) -> Result<(), (Code, String)> {
    let mut request = tonic::Request::new(pb::CreateUploadRequest {
        file_name: "signed.bin".into(),
        size_bytes: MIB,
        content_type: "application/octet-stream".into(),
        ..Default::default()
    });
    request
        .metadata_mut()
        .insert("authorization", format!("Bearer {token}").parse().unwrap());
    let mut api =
        upload_proto::v1::upload_service_client::UploadServiceClient::new(app.channel().await);
    api.create_upload(request)
        .await
        .map(drop)
        .map_err(|s| (s.code(), s.message().to_owned()))
}

fn refused_saying(answer: Result<(), (Code, String)>, words: &str) {
    match answer {
        Err((Code::Unauthenticated, message)) => {
            assert!(message.contains(words), "{message:?} lacks {words:?}")
        }
        other => panic!("expected UNAUTHENTICATED saying {words:?}, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_of_the_issuers_keys_are_verified_and_keys_rotate_without_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let jwks = dir.path().join("jwks.json");
    let (ed, _) = SigningKey::generate_ed25519().unwrap();
    let es = SigningKey::generate_es256().unwrap();
    let rs = SigningKey::generate_rs256().unwrap();
    std::fs::write(&jwks, jwks_document(&[&ed, &es, &rs]).unwrap()).unwrap();
    let app = TestApp::spawn_with(AppOptions {
        worker: false,
        env: vec![
            ("UPLOAD_JWKS".into(), jwks.display().to_string()),
            ("UPLOAD_JWT_ISSUER".into(), ISSUER.into()),
            ("UPLOAD_JWT_AUDIENCE".into(), AUDIENCE.into()),
            ("UPLOAD_JWKS_REFRESH_SECS".into(), "2".into()),
            // Production: no HS256 at all.
            ("UPLOAD_JWT_ALLOW_HS256".into(), "false".into()),
            ("UPLOAD_JWT_SECRET".into(), String::new()),
        ],
        ..Default::default()
    })
    .await;

    for key in [&ed, &es, &rs] {
        create_with(&app, &key.sign(&claims(ISSUER, AUDIENCE)).unwrap())
            .await
            .unwrap_or_else(|e| panic!("key {}: {e:?}", key.kid()));
    }
    refused_saying(
        create_with(
            &app,
            &ed.sign(&claims("https://elsewhere", AUDIENCE)).unwrap(),
        )
        .await,
        "issuer",
    );
    refused_saying(
        create_with(&app, &ed.sign(&claims(ISSUER, "another-service")).unwrap()).await,
        "audience",
    );
    // RFC 7519: `aud` may be an array; ours must be in it.
    let audiences = |names: &[&str]| Claims {
        aud: Some(upload_server::auth::Audience::Many(
            names.iter().map(|n| (*n).to_owned()).collect(),
        )),
        ..claims(ISSUER, AUDIENCE)
    };
    create_with(&app, &ed.sign(&audiences(&["billing", AUDIENCE])).unwrap())
        .await
        .expect("an array of audiences holding ours");
    refused_saying(
        create_with(&app, &ed.sign(&audiences(&["billing", "search"])).unwrap()).await,
        "audience",
    );
    // An HS256 token, even a well-made one, is not accepted here.
    let hs = upload_server::auth::TokenKeys::new("a-development-secret-of-32-bytes!!")
        .mint_claims(claims(ISSUER, AUDIENCE), Duration::from_secs(600))
        .unwrap();
    refused_saying(
        create_with(&app, &hs).await,
        "accepted here: EdDSA, ES256, RS256",
    );

    // The RS256 key's public half used as an HS256 secret (the algorithm swap):
    // HS256 is not accepted here at all.
    let swapped = upload_server::auth::TokenKeys::new(
        &serde_json::to_string(&rs.public_jwk().unwrap()).unwrap(),
    )
    .mint_claims(claims(ISSUER, AUDIENCE), Duration::from_secs(600))
    .unwrap();
    refused_saying(
        create_with(&app, &swapped).await,
        "accepted here: EdDSA, ES256, RS256",
    );

    // Rotation: a key not in the set is refused; the file is rewritten with it and
    // without the Ed25519 key. Within the refresh interval (2 s here), without a
    // restart, the removed key's tokens are refused and the new key's taken.
    let (next, _) = SigningKey::generate_ed25519().unwrap();
    let next_token = next.sign(&claims(ISSUER, AUDIENCE)).unwrap();
    refused_saying(
        create_with(&app, &next_token).await,
        "not in the issuers' key set",
    );
    let old_token = ed.sign(&claims(ISSUER, AUDIENCE)).unwrap();
    create_with(&app, &old_token)
        .await
        .expect("the old key, still listed");
    std::fs::write(&jwks, jwks_document(&[&next, &es, &rs]).unwrap()).unwrap();
    let rewritten = std::time::Instant::now();
    let dropped = poll_until(
        "the removed key refused",
        Duration::from_secs(10),
        || async {
            let answer = create_with(&app, &old_token).await;
            (answer.is_err(), answer)
        },
    )
    .await;
    refused_saying(dropped, "not in the issuers' key set");
    let took = rewritten.elapsed();
    assert!(took < Duration::from_secs(5), "the old key lived {took:?}");
    create_with(&app, &next_token)
        .await
        .expect("the new key, now listed");
    println!("jwks rotation: the removed key refused {took:?} after the file changed");
}

/// A whole HTTP answer of the test's JWKS endpoint.
fn answer_ok(body: &str) -> String {
    format!(
        "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    )
}

/// Serves `answer`'s current text (a whole HTTP response) at every path of a
/// loopback port, as an issuer's JWKS endpoint would; returns its URL.
async fn serve_jwks(answer: std::sync::Arc<std::sync::Mutex<String>>) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/jwks.json", listener.local_addr().unwrap());
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            let response = answer.lock().unwrap().clone();
            tokio::spawn(async move {
                let mut request = Vec::new();
                let mut buf = [0u8; 1024];
                while !request.windows(4).any(|w| w == b"\r\n\r\n") {
                    match socket.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => request.extend_from_slice(&buf[..n]),
                    }
                }
                let _ = socket.write_all(response.as_bytes()).await;
            });
        }
    });
    url
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_jwks_served_over_http_is_fetched_and_read_again_without_redirects_or_giant_bodies() {
    let (first, _) = SigningKey::generate_ed25519().unwrap();
    let second = SigningKey::generate_es256().unwrap();
    let answer = std::sync::Arc::new(std::sync::Mutex::new(answer_ok(
        &jwks_document(&[&first]).unwrap(),
    )));
    let url = serve_jwks(std::sync::Arc::clone(&answer)).await;
    // The second key's set, served where a redirect points.
    let elsewhere = serve_jwks(std::sync::Arc::new(std::sync::Mutex::new(answer_ok(
        &jwks_document(&[&second]).unwrap(),
    ))))
    .await;
    let app = TestApp::spawn_with(AppOptions {
        worker: false,
        env: vec![
            ("UPLOAD_JWKS".into(), url),
            ("UPLOAD_JWKS_ALLOW_LOOPBACK_HTTP".into(), "true".into()),
            ("UPLOAD_JWT_ISSUER".into(), ISSUER.into()),
            ("UPLOAD_JWT_AUDIENCE".into(), AUDIENCE.into()),
            ("UPLOAD_JWKS_REFRESH_SECS".into(), "1".into()),
        ],
        ..Default::default()
    })
    .await;
    let first_token = first.sign(&claims(ISSUER, AUDIENCE)).unwrap();
    create_with(&app, &first_token)
        .await
        .expect("a key of the served set");
    let second_token = second.sign(&claims(ISSUER, AUDIENCE)).unwrap();
    // A redirect to the second key's set is not followed, and a set of the second
    // key padded past 1 MiB is not read: through several refreshes (1 s here) the
    // first key still holds and the second is refused.
    let padded = format!(
        "{{\"keys\": {}, \"padding\": \"{}\"}}",
        serde_json::from_str::<serde_json::Value>(&jwks_document(&[&second]).unwrap()).unwrap()["keys"],
        "x".repeat(1 << 20)
    );
    for hostile in [
        format!(
            "HTTP/1.1 302 Found\r\nlocation: {elsewhere}\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
        ),
        answer_ok(&padded),
    ] {
        *answer.lock().unwrap() = hostile;
        tokio::time::sleep(Duration::from_secs(3)).await;
        refused_saying(
            create_with(&app, &second_token).await,
            "not in the issuers' key set",
        );
        create_with(&app, &first_token)
            .await
            .expect("the keys held are kept");
    }
    // The issuer rotates for real: the endpoint now serves the second key alone.
    *answer.lock().unwrap() = answer_ok(&jwks_document(&[&second]).unwrap());
    let taken = poll_until("the served rotation", Duration::from_secs(10), || async {
        let answer = create_with(&app, &second_token).await;
        (answer.is_ok(), answer)
    })
    .await;
    assert!(taken.is_ok(), "{taken:?}");
    refused_saying(
        create_with(&app, &first_token).await,
        "not in the issuers' key set",
    );
}
