//! Tokens that are not the service's, or not usable, on both services: every one
//! is UNAUTHENTICATED with a message that says what is wrong with it.

use std::time::{SystemTime, UNIX_EPOCH};

use base64::Engine;
use hmac::{KeyInit, Mac};
use serde_json::{Value, json};
use tonic::Code;
use tonic::metadata::MetadataValue;
use upload_e2e::{AppOptions, MIB, TestApp, pb};
use upload_proto::v1::item_service_client::ItemServiceClient;
use upload_proto::v1::upload_service_client::UploadServiceClient;

use super::{Case, case, refuse_all};

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// A JWT with `header` and `claims`, signed with HMAC-SHA-256 (or SHA-512 when the
/// header says HS512; nothing when it says none) under `secret`.
fn jwt(header: Value, claims: &str, secret: &[u8]) -> String {
    let input = format!(
        "{}.{}",
        b64(header.to_string().as_bytes()),
        b64(claims.as_bytes())
    );
    let signature = match header["alg"].as_str() {
        Some("none") => Vec::new(),
        Some("HS512") => {
            let mut mac = hmac::Hmac::<sha2::Sha512>::new_from_slice(secret).unwrap();
            mac.update(input.as_bytes());
            mac.finalize().into_bytes().to_vec()
        }
        _ => {
            let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(secret).unwrap();
            mac.update(input.as_bytes());
            mac.finalize().into_bytes().to_vec()
        }
    };
    format!("{input}.{}", b64(&signature))
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// Claims the service would accept, with `change` applied.
fn claims(change: impl FnOnce(&mut serde_json::Map<String, Value>)) -> String {
    let mut c = json!({"sub": "seller-a", "role": "seller", "group": "standard", "iat": now(), "exp": now() + 600});
    change(c.as_object_mut().unwrap());
    c.to_string()
}

fn hs256() -> Value {
    json!({"alg": "HS256", "typ": "JWT"})
}

fn create() -> pb::CreateUploadRequest {
    pb::CreateUploadRequest {
        part_checksum: 0,
        file_name: "a.mp4".into(),
        size_bytes: 10 * MIB,
        content_type: "video/mp4".into(),
        part_size_bytes: 0,
        idempotency_key: String::new(),
    }
}

/// `msg` with `authorization` set to `value` (none when `None`).
fn authorized<T>(msg: T, value: Option<&str>) -> tonic::Request<T> {
    let mut req = tonic::Request::new(msg);
    if let Some(value) = value {
        let value: MetadataValue<_> = value.parse().expect("an ASCII header value");
        req.metadata_mut().insert("authorization", value);
    }
    req
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_that_are_not_the_services_are_refused_by_name() {
    let app = TestApp::spawn_with(AppOptions {
        worker: false,
        ..Default::default()
    })
    .await;
    let secret = app.worker_env["UPLOAD_JWT_SECRET"].clone().into_bytes();
    let uploads = UploadServiceClient::new(app.channel().await);
    let items = ItemServiceClient::new(app.channel().await);

    let signed = |claims: String| jwt(hs256(), &claims, &secret);
    let tampered = {
        let good = signed(claims(|_| {}));
        let (head, rest) = good.split_once('.').unwrap();
        let (_, signature) = rest.split_once('.').unwrap();
        format!(
            "{head}.{}.{signature}",
            b64(claims(|c| {
                c.insert("group".into(), json!("premium"));
            })
            .as_bytes())
        )
    };
    let bearer = |t: &str| format!("Bearer {t}");
    // (name, authorization header, words the refusal must hold)
    let table: Vec<(&str, Option<String>, &[&'static str])> = vec![
        ("no authorization header", None, &["authorization"]),
        (
            "basic scheme",
            Some("Basic dXNlcjpwYXNz".into()),
            &["Bearer <token>"],
        ),
        (
            "bearer without a token",
            Some("Bearer".into()),
            &["Bearer <token>"],
        ),
        ("garbage", Some(bearer("garbage")), &["well-formed"]),
        ("two segments", Some(bearer("abc.def")), &["well-formed"]),
        (
            "four segments",
            Some(bearer(&format!("{}.x", signed(claims(|_| {}))))),
            &["well-formed"],
        ),
        (
            "header not JSON",
            Some(bearer(&format!("{}.{}.sig", b64(b"hello"), b64(b"{}")))),
            &["well-formed"],
        ),
        (
            "alg none",
            Some(bearer(&jwt(
                json!({"alg": "none"}),
                &claims(|_| {}),
                &secret,
            ))),
            &["\"none\"", "HS256"],
        ),
        (
            "alg HS512 with the right secret",
            Some(bearer(&jwt(
                json!({"alg": "HS512"}),
                &claims(|_| {}),
                &secret,
            ))),
            &["HS512", "HS256"],
        ),
        (
            "alg RS256 over an HMAC signature",
            Some(bearer(&jwt(
                json!({"alg": "RS256"}),
                &claims(|_| {}),
                &secret,
            ))),
            &["RS256"],
        ),
        (
            "header without alg",
            Some(bearer(&jwt(
                json!({"typ": "JWT"}),
                &claims(|_| {}),
                &secret,
            ))),
            &["algorithm"],
        ),
        (
            "signed with another key",
            Some(bearer(&jwt(
                hs256(),
                &claims(|_| {}),
                b"another-secret-of-32-bytes-or-more!",
            ))),
            &["signature"],
        ),
        (
            "claims changed after signing",
            Some(bearer(&tampered)),
            &["signature"],
        ),
        (
            "expired",
            Some(bearer(&signed(claims(|c| {
                c.insert("exp".into(), json!(now() - 60));
            })))),
            &["expired"],
        ),
        (
            "not valid yet",
            Some(bearer(&signed(claims(|c| {
                c.insert("nbf".into(), json!(now() + 3600));
            })))),
            &["not valid yet"],
        ),
        (
            "no exp",
            Some(bearer(&signed(claims(|c| {
                c.remove("exp");
            })))),
            &["exp claim"],
        ),
        (
            "no sub",
            Some(bearer(&signed(claims(|c| {
                c.remove("sub");
            })))),
            &["sub claim"],
        ),
        (
            "no role",
            Some(bearer(&signed(claims(|c| {
                c.remove("role");
            })))),
            &["role claim"],
        ),
        (
            "unknown role",
            Some(bearer(&signed(claims(|c| {
                c.insert("role".into(), json!("admin"));
            })))),
            &["role", "admin"],
        ),
        (
            "a service's unknown scope",
            Some(bearer(&signed(claims(|c| {
                c.insert("role".into(), json!("service"));
                c.insert("scope".into(), json!("items:submit everything"));
            })))),
            &["scope", "everything"],
        ),
        (
            "no group",
            Some(bearer(&signed(claims(|c| {
                c.remove("group");
            })))),
            &["group claim"],
        ),
        (
            "unknown group",
            Some(bearer(&signed(claims(|c| {
                c.insert("group".into(), json!("admin"));
            })))),
            &["group", "admin"],
        ),
        (
            "subject with a path",
            Some(bearer(&signed(claims(|c| {
                c.insert("sub".into(), json!("../../etc"));
            })))),
            &["subject", "seller id"],
        ),
        (
            "empty subject",
            Some(bearer(&signed(claims(|c| {
                c.insert("sub".into(), json!(""));
            })))),
            &["subject", "seller id"],
        ),
        (
            "subject of 65 characters",
            Some(bearer(&signed(claims(|c| {
                c.insert("sub".into(), json!("s".repeat(65)));
            })))),
            &["subject", "1-64"],
        ),
        (
            "exp as text",
            Some(bearer(&signed(claims(|c| {
                c.insert("exp".into(), json!("tomorrow"));
            })))),
            &["exp"],
        ),
        (
            "claims not JSON",
            Some(bearer(&signed("hello".into()))),
            &["claims"],
        ),
        (
            "huge token",
            Some(bearer(&signed(claims(|c| {
                c.insert("pad".into(), json!("x".repeat(6 * 1024)));
            })))),
            &["bytes long", "4096"],
        ),
    ];

    let mut cases: Vec<Case> = Vec::new();
    for (name, header, words) in table {
        let mut api = uploads.clone();
        let request = authorized(create(), header.as_deref());
        cases.push(case(name, Code::Unauthenticated, words, async move {
            api.create_upload(request).await
        }));
    }
    // The same gate stands before every other call, streams and the item service included.
    let expired = bearer(&signed(claims(|c| {
        c.insert("exp".into(), json!(now() - 60));
    })));
    let forged = bearer(&jwt(
        hs256(),
        &claims(|_| {}),
        b"another-secret-of-32-bytes-or-more!",
    ));
    let unsigned = bearer(&jwt(json!({"alg": "none"}), &claims(|_| {}), &secret));
    let id = uuid::Uuid::now_v7().to_string();
    {
        let (mut api, req) = (
            uploads.clone(),
            authorized(
                pb::GetUploadRequest {
                    upload_id: id.clone(),
                    include_history: false,
                },
                Some(&forged),
            ),
        );
        cases.push(case(
            "GetUpload, another key",
            Code::Unauthenticated,
            &["signature"],
            async move { api.get_upload(req).await },
        ));
        let (mut api, req) = (
            uploads.clone(),
            authorized(
                pb::WatchProgressRequest {
                    upload_id: id.clone(),
                },
                Some(&expired),
            ),
        );
        cases.push(case(
            "WatchProgress, expired",
            Code::Unauthenticated,
            &["expired"],
            async move { api.watch_progress(req).await },
        ));
        let (mut api, req) = (
            items.clone(),
            authorized(
                pb::GetItemRequest {
                    item_id: id.clone(),
                },
                Some(&unsigned),
            ),
        );
        cases.push(case(
            "GetItem, alg none",
            Code::Unauthenticated,
            &["none"],
            async move { api.get_item(req).await },
        ));
        let (mut api, req) = (
            items.clone(),
            authorized(
                upload_e2e::submission("k", "", pb::ItemKind::DigitalFile, "t", &[(&id, "")]),
                None,
            ),
        );
        cases.push(case(
            "SubmitItem, no header",
            Code::Unauthenticated,
            &["authorization"],
            async move { api.submit_item(req).await },
        ));
        let (mut api, req) = (
            items.clone(),
            authorized(
                pb::GrantAccessRequest {
                    item_id: id.clone(),
                    user_id: "buyer-1".into(),
                },
                Some(&forged),
            ),
        );
        cases.push(case(
            "GrantAccess, another key",
            Code::Unauthenticated,
            &["signature"],
            async move { api.grant_access(req).await },
        ));
    }
    let refused = refuse_all(&app, "token", cases).await;
    assert!(refused >= 30, "{refused}");

    // The positive control: the same request with the service's own token is served.
    let mut api = uploads.clone();
    api.create_upload(authorized(create(), Some(&bearer(&signed(claims(|_| {}))))))
        .await
        .expect("a token of the service's is accepted");
}
