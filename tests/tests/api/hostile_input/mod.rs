//! The hostile-input suite: tables of requests a careless or malicious caller
//! could send, through the public API and straight to the store. Every case must
//! be refused with the expected status, in a message that names the problem, and
//! leave the service's [`Fingerprint`](upload_e2e::Fingerprint) unchanged: no row,
//! object, part, job or notification added or changed.
//!
//! One module per surface: `tokens` (authentication), `ids` (every RPC given
//! malformed, random and another seller's ids), `create` (sizes, names, types,
//! part sizes), `parts` (part numbers, lengths, MD5s, batches), `store` (signed
//! part URLs misused against the store), `submit` (items and their fields), and
//! `completion` (completing early, twice and concurrently).

mod completion;
mod create;
mod ids;
mod parts;
mod store;
mod submit;
mod tokens;

use std::future::Future;
use std::pin::Pin;

use upload_e2e::TestApp;

type Call = Pin<Box<dyn Future<Output = Result<(), Refusal>> + Send>>;

/// How a call was refused: a gRPC code's name or an HTTP status, the message,
/// and (for gRPC) the details: ErrorInfo's reason and domain, BadRequest's fields.
pub(crate) struct Refusal {
    code: String,
    message: String,
    details: Option<Details>,
}

/// The error details of a gRPC refusal.
struct Details {
    reason: Option<(String, String)>,
    fields: Vec<String>,
}

impl From<tonic::Status> for Refusal {
    fn from(status: tonic::Status) -> Self {
        use tonic_types::StatusExt;
        let details = status.get_error_details();
        Self {
            code: format!("{:?}", status.code()),
            message: status.message().to_owned(),
            details: Some(Details {
                reason: details
                    .error_info()
                    .map(|i| (i.reason.clone(), i.domain.clone())),
                fields: details
                    .bad_request()
                    .map(|b| b.field_violations.iter().map(|v| v.field.clone()).collect())
                    .unwrap_or_default(),
            }),
        }
    }
}

/// One hostile request and how it must be refused.
pub(crate) struct Case {
    name: String,
    code: String,
    words: Vec<String>,
    call: Call,
}

/// A case: `call` must fail with `code`, its message holding every one of `words`
/// (compared without case).
pub(crate) fn case<T>(
    name: impl Into<String>,
    code: tonic::Code,
    words: &[&str],
    call: impl Future<Output = Result<T, tonic::Status>> + Send + 'static,
) -> Case {
    Case {
        name: name.into(),
        code: format!("{code:?}"),
        words: words.iter().map(|w| (*w).to_owned()).collect(),
        call: Box::pin(async move { call.await.map(drop).map_err(Refusal::from) }),
    }
}

/// A case sent straight to the store: it must answer HTTP `status` with a body
/// holding every one of `words` (S3's error code, for one).
pub(crate) fn store_case(
    name: impl Into<String>,
    status: u16,
    words: &[&str],
    call: impl Future<Output = (u16, String)> + Send + 'static,
) -> Case {
    Case {
        name: name.into(),
        code: status.to_string(),
        words: words.iter().map(|w| (*w).to_owned()).collect(),
        call: Box::pin(async move {
            let (status, body) = call.await;
            if (200..300).contains(&status) {
                Ok(())
            } else {
                Err(Refusal {
                    code: status.to_string(),
                    message: body,
                    details: None,
                })
            }
        }),
    }
}

/// Runs every case in turn against `app`, checking its status, its message and
/// that the service's fingerprint did not move; returns how many ran.
pub(crate) async fn refuse_all(app: &TestApp, surface: &str, cases: Vec<Case>) -> usize {
    let count = cases.len();
    let mut before = app.fingerprint().await;
    for case in cases {
        let refusal = match case.call.await {
            Ok(()) => panic!("{surface}/{}: accepted", case.name),
            Err(refusal) => refusal,
        };
        assert_eq!(
            refusal.code, case.code,
            "{surface}/{}: {}",
            case.name, refusal.message
        );
        let message = refusal.message.to_lowercase();
        for word in &case.words {
            assert!(
                message.contains(&word.to_lowercase()),
                "{surface}/{}: the message does not name {word:?}: {}",
                case.name,
                refusal.message
            );
        }
        // Every gRPC refusal carries its stable code; a malformed field is named.
        if let Some(details) = &refusal.details {
            let (reason, domain) = details
                .reason
                .clone()
                .unwrap_or_else(|| panic!("{surface}/{}: no ErrorInfo detail", case.name));
            assert_eq!(
                domain,
                upload_domain::REFUSAL_DOMAIN,
                "{surface}/{}",
                case.name
            );
            let known: upload_domain::Refusal = reason
                .parse()
                .unwrap_or_else(|e| panic!("{surface}/{}: {e}", case.name));
            if refusal.code == "InvalidArgument" && known == upload_domain::Refusal::InvalidArgument
            {
                assert!(
                    !details.fields.is_empty(),
                    "{surface}/{}: INVALID_ARGUMENT without a BadRequest field",
                    case.name
                );
            }
        }
        let after = app.fingerprint().await;
        before.assert_unchanged(&after, &format!("{surface}/{}", case.name));
        before = after;
    }
    eprintln!("hostile input: {count} {surface} cases refused, nothing changed");
    count
}
