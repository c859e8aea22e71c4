//! The server's one error type and its mapping to gRPC statuses.

use tonic::Status;
use upload_db::DbError;
use upload_domain::DomainError;
use upload_storage::StoreError;

/// Why an RPC failed.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// The request is malformed; the message says which field and why.
    #[error("{0}")]
    InvalidArgument(String),
    /// The upload does not exist or belongs to someone else (the two are not told apart).
    #[error("upload {0} not found")]
    NotFound(String),
    /// The item does not exist or the caller may not see it (not told apart).
    #[error("item {0} not found")]
    ItemNotFound(String),
    /// The caller may see the item but not do this to it.
    #[error("{0}")]
    PermissionDenied(String),
    /// The request repeats a key already used for something else.
    #[error("{0}")]
    AlreadyExists(String),
    /// The upload is not in a state that allows this call.
    #[error("{0}")]
    FailedPrecondition(String),
    /// A quota or size limit was exceeded.
    #[error("{0}")]
    ResourceExhausted(String),
    /// A dependency (database, store) is unavailable; retrying later may work.
    #[error("{0}")]
    Unavailable(String),
    /// A bug or corrupt data; details are logged, not sent.
    #[error("{0}")]
    Internal(String),
}

impl From<DomainError> for ApiError {
    fn from(e: DomainError) -> Self {
        ApiError::InvalidArgument(e.to_string())
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

impl From<ApiError> for Status {
    fn from(e: ApiError) -> Self {
        match e {
            ApiError::InvalidArgument(m) => Status::invalid_argument(m),
            ApiError::NotFound(id) => Status::not_found(format!("upload {id} not found")),
            ApiError::ItemNotFound(id) => Status::not_found(format!("item {id} not found")),
            ApiError::AlreadyExists(m) => Status::already_exists(m),
            ApiError::PermissionDenied(m) => Status::permission_denied(m),
            ApiError::FailedPrecondition(m) => Status::failed_precondition(m),
            ApiError::ResourceExhausted(m) => Status::resource_exhausted(m),
            ApiError::Unavailable(m) => {
                tracing::warn!(error = %m, "dependency unavailable");
                Status::unavailable("a storage dependency is unavailable; retry shortly")
            }
            ApiError::Internal(m) => {
                tracing::error!(error = %m, "internal error");
                Status::internal("internal error; it has been logged")
            }
        }
    }
}
