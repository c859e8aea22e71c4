use aws_sdk_s3::config::http::HttpResponse;
use aws_sdk_s3::error::{ProvideErrorMetadata, SdkError};

/// A store failure, sorted by what the caller should do about it.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The object or multipart upload does not exist.
    #[error("not found in the store: {0}")]
    NotFound(String),
    /// The store would not assemble the parts given to CompleteMultipartUpload (on
    /// Garage: a part re-sent after it was stored broke off, and must be sent again).
    #[error("the store refused the parts: {0}")]
    InvalidPart(String),
    /// The store refused the request for a reason retrying will not fix.
    #[error("the store refused the request: {0}")]
    Rejected(String),
    /// The store is unreachable or failed on its side; retrying may help.
    #[error("the store is unavailable: {0}")]
    Unavailable(String),
    /// The request could not be built (a bug or bad configuration).
    #[error("cannot build the store request: {0}")]
    Invalid(String),
}

impl StoreError {
    /// True for failures worth retrying later (5xx, timeouts, dropped connections).
    pub fn is_retryable(&self) -> bool {
        matches!(self, StoreError::Unavailable(_))
    }

    pub(crate) fn from_sdk<E>(op: &str, err: SdkError<E, HttpResponse>) -> Self
    where
        E: ProvideErrorMetadata + std::error::Error + 'static,
    {
        let detail = |e: &dyn ProvideErrorMetadata| {
            format!(
                "{op}: {} ({})",
                e.message().unwrap_or("no message"),
                e.code().unwrap_or("no code")
            )
        };
        match &err {
            SdkError::ServiceError(service) => {
                let e = service.err();
                let status = service.raw().status().as_u16();
                match e.code() {
                    Some("NoSuchUpload" | "NoSuchKey" | "NotFound" | "NoSuchBucket") => {
                        StoreError::NotFound(detail(e))
                    }
                    Some("InvalidPart" | "InvalidPartOrder") => StoreError::InvalidPart(detail(e)),
                    _ if status >= 500 || status == 429 => StoreError::Unavailable(detail(e)),
                    _ if status == 404 => StoreError::NotFound(detail(e)),
                    _ => StoreError::Rejected(detail(e)),
                }
            }
            SdkError::ConstructionFailure(_) => StoreError::Invalid(format!("{op}: {err:?}")),
            _ => StoreError::Unavailable(format!(
                "{op}: {}",
                aws_smithy_types::error::display::DisplayErrorContext(&err)
            )),
        }
    }
}
