//! Browsers reach the API through gRPC-web over HTTP/1.1, with CORS.

use prost::Message;
use upload_domain::{Role, SellerGroup};
use upload_e2e::{AppOptions, TestApp, pb};

fn frame(msg: &impl Message) -> Vec<u8> {
    let body = msg.encode_to_vec();
    let mut out = vec![0u8];
    out.extend_from_slice(&u32::try_from(body.len()).unwrap().to_be_bytes());
    out.extend_from_slice(&body);
    out
}

/// Splits a gRPC-web response body into its data message and its trailers.
fn unframe(body: &[u8]) -> (Vec<Vec<u8>>, String) {
    let (mut data, mut trailers, mut rest) = (Vec::new(), String::new(), body);
    while rest.len() >= 5 {
        let len = u32::from_be_bytes(rest[1..5].try_into().unwrap()) as usize;
        let payload = &rest[5..5 + len];
        if rest[0] & 0x80 != 0 {
            trailers.push_str(&String::from_utf8_lossy(payload));
        } else {
            data.push(payload.to_vec());
        }
        rest = &rest[5 + len..];
    }
    (data, trailers)
}

/// The `grpc-status` a trailers-only gRPC-web answer carries in its headers.
fn grpc_status(response: &reqwest::Response) -> String {
    response
        .headers()
        .get("grpc-status")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_else(|| "none".into())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grpc_web_calls_work_over_http1_with_cors() {
    let app = TestApp::spawn_with(AppOptions {
        worker: false,
        ..Default::default()
    })
    .await;
    let http = app.http1();
    let url = format!("{}/upload.v1.UploadService/CreateUpload", app.endpoint);

    let preflight = http
        .request(reqwest::Method::OPTIONS, &url)
        .header("origin", "https://seller.example")
        .header("access-control-request-method", "POST")
        .header(
            "access-control-request-headers",
            "authorization,content-type,x-grpc-web",
        )
        .send()
        .await
        .unwrap();
    assert!(preflight.status().is_success(), "{}", preflight.status());
    assert_eq!(
        preflight
            .headers()
            .get("access-control-allow-origin")
            .unwrap(),
        "https://seller.example"
    );

    let request = pb::CreateUploadRequest {
        part_checksum: 0,
        file_name: "from-browser.mp4".into(),
        size_bytes: 20 * 1024 * 1024,
        content_type: "video/mp4".into(),
        part_size_bytes: 0,
        idempotency_key: String::new(),
    };
    let response = http
        .post(&url)
        .header("origin", "https://seller.example")
        .header("content-type", "application/grpc-web+proto")
        .header("x-grpc-web", "1")
        .header(
            "authorization",
            format!(
                "Bearer {}",
                app.token("browser-seller", SellerGroup::Standard)
            ),
        )
        .body(frame(&request))
        .send()
        .await
        .unwrap();
    assert!(response.status().is_success());
    let (data, trailers) = unframe(&response.bytes().await.unwrap());
    assert!(trailers.contains("grpc-status:0"), "{trailers}");
    let created = pb::CreateUploadResponse::decode(data[0].as_slice())
        .unwrap()
        .upload
        .unwrap();
    assert_eq!(created.file_name, "from-browser.mp4");
    assert_eq!(created.part_count, 2);

    // Without a token the browser gets a gRPC status it can show, not a transport error.
    let refused = http
        .post(&url)
        .header("content-type", "application/grpc-web+proto")
        .header("x-grpc-web", "1")
        .body(frame(&request))
        .send()
        .await
        .unwrap();
    let status = grpc_status(&refused);
    assert_eq!(status, (tonic::Code::Unauthenticated as i32).to_string());

    // The same table decides over gRPC-web: a buyer may not create uploads.
    let denied = http
        .post(&url)
        .header("origin", "https://seller.example")
        .header("content-type", "application/grpc-web+proto")
        .header("x-grpc-web", "1")
        .header(
            "authorization",
            format!("Bearer {}", app.role_token(Role::Buyer, "buyer-web", &[])),
        )
        .body(frame(&request))
        .send()
        .await
        .unwrap();
    let status = grpc_status(&denied);
    assert_eq!(status, (tonic::Code::PermissionDenied as i32).to_string());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cors_answers_only_the_configured_origins() {
    let app = TestApp::spawn_with(AppOptions {
        worker: false,
        ..Default::default()
    })
    .await;
    let http = app.http1();
    let url = format!("{}/upload.v1.UploadService/GetUpload", app.endpoint);
    let preflight = |origin: &'static str| {
        http.request(reqwest::Method::OPTIONS, &url)
            .header("origin", origin)
            .header("access-control-request-method", "POST")
            .header(
                "access-control-request-headers",
                "authorization,content-type",
            )
            .send()
    };
    let allowed = |response: &reqwest::Response| {
        response
            .headers()
            .get("access-control-allow-origin")
            .map(|v| v.to_str().unwrap().to_owned())
    };
    // The harness lists https://seller.example and http://127.0.0.1:* (any port).
    for origin in ["https://seller.example", "http://127.0.0.1:41234"] {
        let response = preflight(origin).await.unwrap();
        assert_eq!(allowed(&response).as_deref(), Some(origin), "{origin}");
    }
    for origin in [
        "https://evil.example",
        "https://seller.example.evil.example",
        "http://seller.example",
        "null",
    ] {
        let response = preflight(origin).await.unwrap();
        assert_eq!(allowed(&response), None, "{origin} was allowed");
    }
}
