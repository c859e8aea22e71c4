//! CreateUpload given hostile sizes, names, types and part sizes: each refused
//! before anything is created (no row, no multipart upload in the store).

use tonic::Code;
use upload_domain::{MAX_PART_SIZE, MIN_PART_SIZE, SellerGroup};
use upload_e2e::{AppOptions, MIB, TestApp, pb};

use super::{Case, case, refuse_all};

fn request(name: &str, size: u64, content_type: &str, part_size: u64) -> pb::CreateUploadRequest {
    pb::CreateUploadRequest {
        part_checksum: 0,
        file_name: name.to_owned(),
        size_bytes: size,
        content_type: content_type.to_owned(),
        part_size_bytes: part_size,
        idempotency_key: String::new(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_sizes_names_and_types_create_nothing() {
    let app = TestApp::spawn_with(AppOptions {
        worker: false,
        ..Default::default()
    })
    .await;
    let standard = app.client("seller-a", SellerGroup::Standard).await;
    let premium = app.client("seller-p", SellerGroup::Premium).await;
    let std_limit = app.config.policy.standard_limit_bytes;
    let premium_limit = app.config.policy.premium_limit_bytes;

    let mut cases: Vec<Case> = Vec::new();
    let mut push =
        |name: String, client: &upload_client::UploadClient, req, code, words: &[&str]| {
            let mut api = client.api();
            cases.push(case(name, code, words, async move {
                api.create_upload(req).await
            }));
        };

    // Sizes.
    for (label, size, client, code, words) in [
        (
            "0 bytes",
            0,
            &standard,
            Code::InvalidArgument,
            &["greater than zero"][..],
        ),
        (
            "one over the standard limit",
            std_limit + 1,
            &standard,
            Code::ResourceExhausted,
            &["standard", "at most"][..],
        ),
        (
            "one over the premium limit",
            premium_limit + 1,
            &premium,
            Code::ResourceExhausted,
            &["premium", "at most"][..],
        ),
        (
            "the premium limit as a standard seller",
            premium_limit,
            &standard,
            Code::ResourceExhausted,
            &["standard"][..],
        ),
        (
            "i64::MAX + 1",
            1 << 63,
            &premium,
            Code::ResourceExhausted,
            &["at most"][..],
        ),
        (
            "u64::MAX",
            u64::MAX,
            &premium,
            Code::ResourceExhausted,
            &["at most"][..],
        ),
    ] {
        push(
            format!("size {label}"),
            client,
            request("a.mp4", size, "video/mp4", 0),
            code,
            words,
        );
    }

    // Names: what could hide, traverse, break a header or overflow.
    let names: Vec<(&str, String, &str)> = vec![
        ("empty", String::new(), "empty"),
        ("spaces", "   ".into(), "empty"),
        ("slash", "a/b.mp4".into(), "path separator"),
        ("backslash", "a\\b.mp4".into(), "path separator"),
        ("traversal", "../../etc/passwd".into(), "path separator"),
        ("dot-dot", "..".into(), "only of dots"),
        ("dots", "....".into(), "only of dots"),
        ("dots and spaces", ". . .".into(), "only of dots"),
        ("NUL", "a\0b.mp4".into(), "control characters"),
        ("newline", "a\nb.mp4".into(), "control characters"),
        (
            "carriage return and header",
            "a.mp4\r\nX-Amz-Acl: public-read".into(),
            "control characters",
        ),
        ("bell", "a\u{7}.mp4".into(), "control characters"),
        (
            "escape sequence",
            "\u{1b}[31mred.mp4".into(),
            "control characters",
        ),
        ("DEL", "a\u{7f}.mp4".into(), "control characters"),
        ("C1 control", "a\u{85}.mp4".into(), "control characters"),
        (
            "right-to-left override",
            "gpj.\u{202E}exe".into(),
            "invisible formatting",
        ),
        (
            "left-to-right override",
            "a\u{202D}.pdf".into(),
            "invisible formatting",
        ),
        (
            "right-to-left isolate",
            "a\u{2067}b.pdf".into(),
            "invisible formatting",
        ),
        (
            "first-strong isolate",
            "a\u{2068}b.pdf".into(),
            "invisible formatting",
        ),
        (
            "right-to-left mark",
            "x\u{200F}.zip".into(),
            "invisible formatting",
        ),
        (
            "zero-width space",
            "zero\u{200B}width.png".into(),
            "invisible formatting",
        ),
        (
            "zero-width joiner",
            "a\u{200D}b.png".into(),
            "invisible formatting",
        ),
        (
            "byte-order mark",
            "\u{FEFF}a.png".into(),
            "invisible formatting",
        ),
        ("soft hyphen", "a\u{AD}b.png".into(), "invisible formatting"),
        (
            "256 ASCII bytes",
            "x".repeat(252) + ".mp4",
            "longer than 255 bytes",
        ),
        (
            "128 two-byte characters",
            "é".repeat(128),
            "longer than 255 bytes",
        ),
        ("64 emoji", "😀".repeat(64), "longer than 255 bytes"),
    ];
    for (label, name, word) in names {
        push(
            format!("name {label}"),
            &standard,
            request(&name, MIB, "video/mp4", 0),
            Code::InvalidArgument,
            &["file name", word],
        );
    }

    // Declared types.
    let long_type = format!("video/{}", "a".repeat(300));
    let types: Vec<(&str, &str, &[&str])> = vec![
        ("empty", "", &["content type", "type/subtype"]),
        ("no subtype", "video", &["content type", "type/subtype"]),
        ("no type", "/mp4", &["content type", "type/subtype"]),
        ("empty subtype", "video/", &["content type", "type/subtype"]),
        (
            "space inside",
            "vi deo/mp4",
            &["content type", "type/subtype"],
        ),
        (
            "header injection",
            "video/mp4\r\nX-Amz-Acl: public-read",
            &["content type", "type/subtype"],
        ),
        (
            "NUL in a parameter",
            "video/mp4; name=a\0b",
            &["content type", "type/subtype"],
        ),
        (
            "bidi in a parameter",
            "video/mp4; name=\u{202E}4pm.exe",
            &["content type", "type/subtype"],
        ),
        (
            "over 255 bytes",
            &long_type,
            &["content type", "type/subtype"],
        ),
        ("HTML", "text/html", &["text/html", "not accepted"]),
        (
            "HTML in capitals",
            "TEXT/HTML",
            &["text/html", "not accepted"],
        ),
        (
            "HTML with parameters",
            "text/html; charset=utf-8",
            &["text/html", "not accepted"],
        ),
        (
            "JavaScript",
            "application/javascript",
            &["application/javascript", "not accepted"],
        ),
        (
            "Windows executable",
            "application/x-msdownload",
            &["application/x-msdownload", "not accepted"],
        ),
        (
            "shell script",
            "application/x-sh",
            &["application/x-sh", "not accepted"],
        ),
        ("wildcard", "video/*", &["content type"]),
    ];
    for (label, content_type, words) in types {
        push(
            format!("type {label}"),
            &standard,
            request("a.mp4", MIB, content_type, 0),
            Code::InvalidArgument,
            words,
        );
    }

    // Names that make the file a program or a script, or another type than declared.
    const OCTET: &str = "application/octet-stream";
    for (label, name, content_type, code, words) in [
        (
            "batch file",
            "setup.bat",
            OCTET,
            Code::InvalidArgument,
            &["program or a script", ".bat"][..],
        ),
        (
            "PowerShell",
            "run.ps1",
            OCTET,
            Code::InvalidArgument,
            &["program or a script", ".ps1"],
        ),
        (
            "a script behind a PDF's name",
            "invoice.pdf.js",
            "application/pdf",
            Code::InvalidArgument,
            &["program or a script", ".js"],
        ),
        (
            "executable in capitals",
            "SETUP.EXE",
            OCTET,
            Code::InvalidArgument,
            &[".exe"],
        ),
        (
            "shell script as text",
            "install.sh",
            "text/plain",
            Code::InvalidArgument,
            &[".sh"],
        ),
        (
            "Java archive",
            "tool.jar",
            "application/zip",
            Code::InvalidArgument,
            &[".jar"],
        ),
        (
            "a JPEG's name declared a PDF",
            "photo.jpg",
            "application/pdf",
            Code::InvalidArgument,
            &["named .jpg", "application/pdf"],
        ),
        (
            "a PDF's name declared a video",
            "manual.pdf",
            "video/mp4",
            Code::InvalidArgument,
            &["named .pdf", "video/mp4"],
        ),
        (
            "an executable type",
            "tool",
            "application/vnd.microsoft.portable-executable",
            Code::InvalidArgument,
            &["not accepted"],
        ),
    ] {
        push(
            format!("name {label}"),
            &standard,
            request(name, MIB, content_type, 0),
            code,
            words,
        );
    }

    // Part sizes the store cannot take.
    for (label, part) in [
        ("1 byte", 1),
        ("one under the minimum", MIN_PART_SIZE - 1),
        ("one over the maximum", MAX_PART_SIZE + 1),
        ("u64::MAX", u64::MAX),
    ] {
        push(
            format!("part size {label}"),
            &standard,
            request("a.mp4", 100 * MIB, "video/mp4", part),
            Code::InvalidArgument,
            &["part size", "out of range"],
        );
    }
    let refused = refuse_all(&app, "CreateUpload", cases).await;
    assert!(refused >= 50, "{refused}");

    // The positive controls: each limit is exact, and the smallest file is taken.
    for (client, size, part) in [
        (&standard, std_limit, 0),
        (&premium, premium_limit, 0),
        (&standard, 1, 0),
        (&standard, 100 * MIB, MIN_PART_SIZE),
    ] {
        let upload = client
            .create(
                "ok.mp4",
                size,
                "Video/MP4; codecs=avc1",
                (part != 0).then_some(part),
            )
            .await
            .unwrap_or_else(|e| panic!("{size} bytes: {e}"));
        assert_eq!(upload.content_type, "video/mp4");
    }
}
