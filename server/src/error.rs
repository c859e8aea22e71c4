//! The server's one error type: each variant is one reason a call fails, with its
//! sentence written once here and its gRPC code given in one place
//! ([`From<ApiError> for Status`]).

use std::time::Duration;

use chrono::{DateTime, Utc};
use tonic::Status;
use upload_assembly::AssemblyError;
use upload_db::DbError;
use upload_domain::{
    DomainError, FileId, ItemId, REFUSAL_DOMAIN, Refusal, SellerGroup, SubmitRefusal, UploadId,
    UploadState,
};
use upload_storage::StoreError;

/// Lists part numbers, at most 20 of them.
fn parts(numbers: &[u32]) -> String {
    let shown: Vec<String> = numbers.iter().take(20).map(u32::to_string).collect();
    let more = numbers.len().saturating_sub(shown.len());
    if more > 0 {
        format!("{} and {more} more", shown.join(", "))
    } else {
        shown.join(", ")
    }
}

/// Why an RPC failed.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// The request is malformed: `field` names the protobuf field, the message why.
    #[error("{message}")]
    InvalidArgument {
        /// The field, as the protobuf names it.
        field: &'static str,
        /// What is wrong with it.
        message: String,
    },
    /// Fair use: too many CreateUpload calls in a minute.
    #[error(
        "too many uploads created: at most {per_minute} a minute; retry in {} s",
        retry_after.as_secs().max(1)
    )]
    CreateRateExceeded {
        /// The limit.
        per_minute: u32,
        /// When the next call will be taken.
        retry_after: Duration,
    },
    /// Fair use: too many unfinished uploads.
    #[error(
        "{open} uploads are unfinished and at most {max} may be: complete or abort some, then create again"
    )]
    TooManyOpenUploads {
        /// Unfinished uploads.
        open: u64,
        /// The limit.
        max: u64,
    },
    /// Fair use: too many watch streams open at once.
    #[error(
        "{max} watch streams are open already, the most allowed; close one, or retry in {} s",
        retry_after.as_secs().max(1)
    )]
    TooManyWatches {
        /// The limit.
        max: usize,
        /// When to try again.
        retry_after: Duration,
    },
    /// The declared type is not on the allow-list.
    #[error(
        "files of type {0} are not accepted on the marketplace; declare one of the accepted types (videos, images, audio, documents, archives)"
    )]
    TypeNotAccepted(String),
    /// The file is a program or a script where the marketplace sells none.
    #[error("{0}")]
    SoftwareNotAccepted(String),
    /// The file's name says another type than the one declared.
    #[error("{0}")]
    NameMismatch(String),
    /// The file is larger than the caller's group may upload.
    #[error(
        "the file is {size} bytes but {group} sellers may upload at most {limit} bytes per file"
    )]
    OverSizeLimit {
        /// The declared size.
        size: u64,
        /// The caller's group.
        group: SellerGroup,
        /// The group's limit.
        limit: u64,
    },
    /// The upload does not exist or belongs to someone else (the two are not told apart).
    #[error("upload {0} not found")]
    UploadNotFound(UploadId),
    /// The item does not exist or the caller may not see it (not told apart).
    #[error("item {0} not found")]
    ItemNotFound(ItemId),
    /// The item has no such file.
    #[error("file {file} is not a file of item {item}")]
    FileNotFound {
        /// The item.
        item: ItemId,
        /// The file asked for.
        file: FileId,
    },
    /// The file has no such version (or, asked for the current one, none yet).
    #[error("{}", match version {
        Some(v) => format!("file {file} of item {item} has no version {v}; ListVersions shows the stored ones"),
        None => format!("file {file} of item {item} has no stored version yet"),
    })]
    VersionNotFound {
        /// The item.
        item: ItemId,
        /// The file.
        file: FileId,
        /// The version asked for; `None` for the current one.
        version: Option<i32>,
    },
    /// A version whose file is not stored after a clean scan (never expected).
    #[error(
        "version {version} of file {file} cannot be downloaded: its file is not stored after a clean scan"
    )]
    NotDownloadable {
        /// The file.
        file: FileId,
        /// The version.
        version: i32,
    },
    /// CreateUpload's idempotency key made another upload.
    #[error(
        "idempotency key {key:?} already created upload {upload} with another file name, size, type or part size; use a new key for a new upload"
    )]
    UploadKeyReused {
        /// The key.
        key: String,
        /// The upload it made.
        upload: UploadId,
    },
    /// A later scan found malware in the version's file.
    #[error(
        "version {version} of file {file} cannot be downloaded: a later malware scan found {signature} in it, {}",
        if *held { "and the file is held while our staff review it (it downloads again if they find it safe)" } else { "and our staff confirmed it: the file is quarantined" }
    )]
    VersionQuarantined {
        /// The file.
        file: FileId,
        /// The version.
        version: i32,
        /// The malware found.
        signature: String,
        /// Held for review (true), or confirmed.
        held: bool,
    },
    /// The caller may see the item but not do this to it.
    #[error("only the owner of item {0} may change it or its access")]
    NotTheOwner(ItemId),
    /// The upload was aborted or expired: nothing more can be done with it.
    #[error("upload {upload} is {state}; start a new upload")]
    UploadEnded {
        /// The upload.
        upload: UploadId,
        /// Aborted or expired.
        state: UploadState,
    },
    /// The upload's deadline passed.
    #[error("upload {upload} expired at {at}; start a new upload")]
    UploadExpired {
        /// The upload.
        upload: UploadId,
        /// Its deadline.
        at: DateTime<Utc>,
    },
    /// Parts are no longer signed: the upload was completed, aborted or expired.
    #[error("upload {0} no longer accepts parts (it was completed, aborted or expired)")]
    NotAcceptingParts(UploadId),
    /// Only an unfinished upload can be aborted.
    #[error("upload {upload} is {state}; only an unfinished upload can be aborted")]
    NotAbortable {
        /// The upload.
        upload: UploadId,
        /// Its state.
        state: UploadState,
    },
    /// The upload moved on while the call ran.
    #[error("upload {upload} became {state} meanwhile; {what}")]
    MovedOn {
        /// The upload.
        upload: UploadId,
        /// Its state now.
        state: UploadState,
        /// What that means for the caller.
        what: &'static str,
    },
    /// Parts the plan needs are not in the store.
    #[error("parts {} are not in the store yet; send them, then complete again", parts(.0))]
    PartsMissing(Vec<u32>),
    /// Parts in the store are not what was signed for them.
    #[error(
        "parts {} in the store differ from what was signed for them; sign and send them again",
        parts(.0)
    )]
    PartsMismatched(Vec<u32>),
    /// The stored parts do not add up to the declared size.
    #[error("the stored parts add up to {stored} bytes, not the declared {declared}")]
    PartsSizeMismatch {
        /// Bytes stored as signed.
        stored: u64,
        /// The declared size.
        declared: u64,
    },
    /// Garage's quirk: a part re-sent over a broken connection must be sent again.
    #[error(
        "the store would not assemble the parts: a part that was being sent again broke off, and the store needs it in full; send again every part you were re-sending, then complete again"
    )]
    PartResendBrokeOff,
    /// The store holds no assembled object of the declared size.
    #[error(
        "upload {0} could not be assembled in the store; send the missing parts and complete again"
    )]
    NotAssembled(UploadId),
    /// The store no longer has the multipart upload of an unfinished upload.
    #[error(
        "the store no longer holds the parts of upload {0}; complete it if it was, or start a new upload"
    )]
    PartsGone(UploadId),
    /// SubmitItem was refused.
    #[error(transparent)]
    Submit(#[from] SubmitRefusal),
    /// A dependency (database, store) is unavailable; retrying later may work.
    #[error("{0}")]
    Unavailable(String),
    /// A bug or corrupt data; details are logged, not sent.
    #[error("{0}")]
    Internal(String),
}

impl From<DomainError> for ApiError {
    fn from(e: DomainError) -> Self {
        ApiError::InvalidArgument {
            field: e.field(),
            message: e.to_string(),
        }
    }
}

impl From<DbError> for ApiError {
    fn from(e: DbError) -> Self {
        match e {
            DbError::Pool(_) | DbError::Connect(_) => ApiError::Unavailable(e.to_string()),
            _ => ApiError::Internal(e.to_string()),
        }
    }
}

impl From<diesel::result::Error> for ApiError {
    fn from(e: diesel::result::Error) -> Self {
        ApiError::from(DbError::from(e))
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Unavailable(_) => ApiError::Unavailable(e.to_string()),
            _ => ApiError::Internal(e.to_string()),
        }
    }
}

impl From<AssemblyError> for ApiError {
    fn from(e: AssemblyError) -> Self {
        match e {
            AssemblyError::Db(e) => e.into(),
            AssemblyError::Store(e) => e.into(),
        }
    }
}

impl ApiError {
    /// A malformed `field`, and what is wrong with it.
    pub fn invalid(field: &'static str, message: impl Into<String>) -> Self {
        Self::InvalidArgument {
            field,
            message: message.into(),
        }
    }

    /// The stable code the refusal's ErrorInfo carries.
    pub fn reason(&self) -> Refusal {
        match self {
            ApiError::InvalidArgument { .. } => Refusal::InvalidArgument,
            ApiError::CreateRateExceeded { .. } => Refusal::CreateRateExceeded,
            ApiError::TooManyOpenUploads { .. } => Refusal::TooManyOpenUploads,
            ApiError::TooManyWatches { .. } => Refusal::TooManyWatches,
            ApiError::TypeNotAccepted(_) => Refusal::TypeNotAccepted,
            ApiError::SoftwareNotAccepted(_) => Refusal::SoftwareNotAccepted,
            ApiError::NameMismatch(_) => Refusal::NameMismatch,
            ApiError::OverSizeLimit { .. } => Refusal::OverSizeLimit,
            ApiError::UploadNotFound(_) => Refusal::UploadNotFound,
            ApiError::ItemNotFound(_) => Refusal::ItemNotFound,
            ApiError::FileNotFound { .. } => Refusal::FileNotFound,
            ApiError::VersionNotFound { .. } => Refusal::VersionNotFound,
            ApiError::NotDownloadable { .. } => Refusal::NotDownloadable,
            ApiError::UploadKeyReused { .. } => Refusal::UploadKeyReused,
            ApiError::VersionQuarantined { .. } => Refusal::VersionQuarantined,
            ApiError::NotTheOwner(_) => Refusal::NotTheOwner,
            ApiError::UploadEnded { .. } => Refusal::UploadEnded,
            ApiError::UploadExpired { .. } => Refusal::UploadExpired,
            ApiError::NotAcceptingParts(_) => Refusal::NotAcceptingParts,
            ApiError::NotAbortable { .. } => Refusal::NotAbortable,
            ApiError::MovedOn { .. } => Refusal::MovedOn,
            ApiError::PartsMissing(_) => Refusal::PartsMissing,
            ApiError::PartsMismatched(_) => Refusal::PartsMismatched,
            ApiError::PartsSizeMismatch { .. } => Refusal::PartsSizeMismatch,
            ApiError::PartResendBrokeOff => Refusal::PartResendBrokeOff,
            ApiError::NotAssembled(_) => Refusal::NotAssembled,
            ApiError::PartsGone(_) => Refusal::PartsGone,
            ApiError::Submit(refusal) => match refusal {
                SubmitRefusal::KeyReused(_) => Refusal::SubmissionKeyReused,
                SubmitRefusal::ItemNotFound(_) => Refusal::ItemNotFound,
                SubmitRefusal::UploadNotFound(_) => Refusal::UploadNotFound,
                SubmitRefusal::UploadNotReady { .. } => Refusal::UploadNotReady,
                SubmitRefusal::KindChanged { .. } => Refusal::KindChanged,
                SubmitRefusal::NoFiles => Refusal::NoFiles,
                SubmitRefusal::TooManyFiles { .. } => Refusal::TooManyFiles,
                SubmitRefusal::UnknownFile(_) => Refusal::UnknownFile,
                SubmitRefusal::DuplicateFile(_) => Refusal::DuplicateFile,
                SubmitRefusal::NotAVideo { .. } => Refusal::NotAVideo,
            },
            ApiError::Unavailable(_) => Refusal::Unavailable,
            ApiError::Internal(_) => Refusal::Internal,
        }
    }

    /// The gRPC code, as gRPC means them: the request is wrong (INVALID_ARGUMENT),
    /// a named thing does not exist for the caller (NOT_FOUND), the system is not in
    /// a state that allows the call (FAILED_PRECONDITION), a quota (RESOURCE_EXHAUSTED).
    pub fn code(&self) -> tonic::Code {
        use tonic::Code;
        match self {
            ApiError::InvalidArgument { .. }
            | ApiError::TypeNotAccepted(_)
            | ApiError::SoftwareNotAccepted(_)
            | ApiError::NameMismatch(_) => Code::InvalidArgument,
            ApiError::OverSizeLimit { .. }
            | ApiError::CreateRateExceeded { .. }
            | ApiError::TooManyOpenUploads { .. }
            | ApiError::TooManyWatches { .. } => Code::ResourceExhausted,
            ApiError::UploadNotFound(_)
            | ApiError::ItemNotFound(_)
            | ApiError::FileNotFound { .. }
            | ApiError::VersionNotFound { .. } => Code::NotFound,
            ApiError::UploadKeyReused { .. } => Code::AlreadyExists,
            ApiError::NotTheOwner(_) => Code::PermissionDenied,
            ApiError::UploadEnded { .. }
            | ApiError::UploadExpired { .. }
            | ApiError::NotAcceptingParts(_)
            | ApiError::NotAbortable { .. }
            | ApiError::MovedOn { .. }
            | ApiError::PartsMissing(_)
            | ApiError::PartsMismatched(_)
            | ApiError::PartsSizeMismatch { .. }
            | ApiError::PartResendBrokeOff
            | ApiError::NotAssembled(_)
            | ApiError::PartsGone(_)
            | ApiError::NotDownloadable { .. }
            | ApiError::VersionQuarantined { .. } => Code::FailedPrecondition,
            ApiError::Submit(refusal) => match refusal {
                SubmitRefusal::KeyReused(_) => Code::AlreadyExists,
                SubmitRefusal::ItemNotFound(_) | SubmitRefusal::UploadNotFound(_) => Code::NotFound,
                SubmitRefusal::UploadNotReady { .. } => Code::FailedPrecondition,
                SubmitRefusal::KindChanged { .. }
                | SubmitRefusal::NoFiles
                | SubmitRefusal::TooManyFiles { .. }
                | SubmitRefusal::UnknownFile(_)
                | SubmitRefusal::DuplicateFile(_)
                | SubmitRefusal::NotAVideo { .. } => Code::InvalidArgument,
            },
            ApiError::Unavailable(_) => Code::Unavailable,
            ApiError::Internal(_) => Code::Internal,
        }
    }
}

/// How long a client should wait before retrying a call that met an unavailable
/// dependency.
const RETRY_UNAVAILABLE: Duration = Duration::from_secs(1);
/// How long a caller with too many unfinished uploads is told to wait.
const RETRY_OPEN_UPLOADS: Duration = Duration::from_secs(30);

/// A refusal with its details: ErrorInfo (`reason`, the service's domain), a
/// BadRequest naming `field` when there is one, RetryInfo when a retry may work.
pub fn refusal_status(
    code: tonic::Code,
    message: impl Into<String>,
    reason: Refusal,
    field: Option<&str>,
    retry_after: Option<Duration>,
) -> Status {
    use tonic_types::{ErrorDetails, StatusExt};
    let message = message.into();
    let mut details = ErrorDetails::new();
    details.set_error_info(
        reason.as_str(),
        REFUSAL_DOMAIN,
        std::collections::HashMap::new(),
    );
    if let Some(field) = field {
        details.add_bad_request_violation(field, message.clone());
    }
    if retry_after.is_some() {
        details.set_retry_info(retry_after);
    }
    Status::with_error_details(code, message, details)
}

impl From<ApiError> for Status {
    fn from(e: ApiError) -> Self {
        let reason = e.reason();
        let (field, retry_after) = match &e {
            ApiError::InvalidArgument { field, .. } => (Some(*field), None),
            ApiError::SoftwareNotAccepted(_) | ApiError::NameMismatch(_) => {
                (Some("file_name"), None)
            }
            ApiError::CreateRateExceeded { retry_after, .. }
            | ApiError::TooManyWatches { retry_after, .. } => (None, Some(*retry_after)),
            // Room comes when the caller's own uploads finish: look again in a while.
            ApiError::TooManyOpenUploads { .. } => (None, Some(RETRY_OPEN_UPLOADS)),
            ApiError::Unavailable(_) => (None, Some(RETRY_UNAVAILABLE)),
            _ => (None, None),
        };
        let message = match &e {
            ApiError::Unavailable(m) => {
                tracing::warn!(error = %m, "dependency unavailable");
                "a storage dependency is unavailable; retry shortly".to_owned()
            }
            ApiError::Internal(m) => {
                tracing::error!(error = %m, "internal error");
                "internal error; it has been logged".to_owned()
            }
            ApiError::NotDownloadable { .. } => {
                tracing::error!(error = %e, "a version whose file is not stored clean");
                e.to_string()
            }
            _ => e.to_string(),
        };
        refusal_status(e.code(), message, reason, field, retry_after)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_part_lists_are_cut() {
        let all: Vec<u32> = (1..=25).collect();
        let message = ApiError::PartsMissing(all).to_string();
        assert!(message.contains("1, 2, 3"), "{message}");
        assert!(message.contains("and 5 more"), "{message}");
    }

    #[test]
    fn a_missing_version_is_not_found() {
        let e = ApiError::VersionNotFound {
            item: ItemId::new(),
            file: FileId::new(),
            version: Some(7),
        };
        assert_eq!(e.code(), tonic::Code::NotFound);
        assert!(e.to_string().contains("no version 7"));
    }
}
