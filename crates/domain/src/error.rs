/// Why a value from outside was refused. Messages are written for the person who sent it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DomainError {
    /// The upload id is not a UUID.
    #[error("upload id {0:?} is not a valid id; use the upload_id returned by CreateUpload")]
    InvalidUploadId(String),
    /// The item id is not a UUID.
    #[error("item id {0:?} is not a valid id; use the item_id returned by SubmitItem")]
    InvalidItemId(String),
    /// The file id is not a UUID.
    #[error("file id {0:?} is not a valid id; use a file_id from GetItem or ListVersions")]
    InvalidFileId(String),
    /// An item's text field is unusable.
    #[error("{0}")]
    InvalidItemField(&'static str),
    /// The idempotency key is unusable.
    #[error(
        "idempotency_key is required: 1-128 visible ASCII characters, the same for every retry of one request"
    )]
    InvalidIdempotencyKey,
    /// The seller id in a token is unusable.
    #[error("seller id {0:?} must be 1-64 characters of letters, digits, '-' or '_'")]
    InvalidSellerId(String),
    /// The seller group in a token is unknown.
    #[error("seller group {0:?} is unknown; expected \"standard\" or \"premium\"")]
    InvalidSellerGroup(String),
    /// The file name is unusable.
    #[error("file name is invalid: {0}")]
    InvalidFileName(&'static str),
    /// The content type is not of the form type/subtype.
    #[error("content type {0:?} is invalid; expected type/subtype, for example video/mp4")]
    InvalidContentType(String),
    /// The submission id is not a UUID.
    #[error("submission id {0:?} is not a valid id; use the submission_id returned by SubmitItem")]
    InvalidSubmissionId(String),
    /// The notification id is not a UUID.
    #[error("notification id {0:?} is not a valid id")]
    InvalidNotificationId(String),
    /// A hex digest has the wrong length or a character that is not a hex digit.
    #[error("{0} digest {1:?} is not hex of the right length")]
    InvalidDigestHex(&'static str, String),
    /// An MD5 digest does not have 16 bytes.
    #[error("content MD5 must be exactly 16 bytes (the raw digest), got {0}")]
    InvalidMd5(usize),
    /// A SHA-256 digest does not have 32 bytes.
    #[error("checksum SHA-256 must be exactly 32 bytes (the raw digest), got {0}")]
    InvalidSha256(usize),
    /// A part came with a digest other than the one its upload's parts are signed with.
    #[error("{}", wrong_part_checksum(*.0))]
    WrongPartChecksum(crate::PartChecksum),
    /// The file is empty.
    #[error("file size must be greater than zero")]
    EmptyFile,
    /// The requested part size is out of the store's bounds.
    #[error(
        "part size {requested} bytes is out of range: parts must be between {min} and {max} bytes"
    )]
    PartSizeOutOfRange {
        /// The size asked for.
        requested: u64,
        /// The smallest allowed part.
        min: u64,
        /// The largest allowed part.
        max: u64,
    },
    /// The file needs more parts than the store allows at this part size.
    #[error(
        "a {size}-byte file in {part_size}-byte parts needs {parts} parts; at most {max} are allowed, so use parts of at least {needed} bytes"
    )]
    TooManyParts {
        /// The file's size.
        size: u64,
        /// The part size asked for.
        part_size: u64,
        /// Parts that would be needed.
        parts: u64,
        /// The store's limit.
        max: u32,
        /// The smallest part size that fits.
        needed: u64,
    },
    /// A part number outside the plan.
    #[error("part number {number} is out of range: this upload has parts 1 to {count}")]
    PartNumberOutOfRange {
        /// The number asked for.
        number: u32,
        /// Parts in the plan.
        count: u32,
    },
    /// A part's length differs from the plan.
    #[error("part {number} must be exactly {expected} bytes long, but {got} bytes were declared")]
    PartLengthMismatch {
        /// The part's number.
        number: u32,
        /// Its length in the plan.
        expected: u64,
        /// The length declared.
        got: u64,
    },
}

impl DomainError {
    /// The request field the error is about, as the protobuf names it (for the
    /// BadRequest detail of the refusal).
    pub fn field(&self) -> &'static str {
        match self {
            Self::InvalidUploadId(_) => "upload_id",
            Self::InvalidItemId(_) => "item_id",
            Self::InvalidFileId(_) => "file_id",
            Self::InvalidItemField(message) => {
                if message.starts_with("title") {
                    "title"
                } else if message.starts_with("description") {
                    "description"
                } else {
                    "item"
                }
            }
            Self::InvalidIdempotencyKey => "idempotency_key",
            Self::InvalidSellerId(_) => "user_id",
            Self::InvalidSellerGroup(_) => "group",
            Self::InvalidFileName(_) => "file_name",
            Self::InvalidContentType(_) => "content_type",
            Self::InvalidSubmissionId(_) => "submission_id",
            Self::InvalidNotificationId(_) => "notification_id",
            Self::InvalidDigestHex(..) => "digest",
            Self::InvalidMd5(_) | Self::WrongPartChecksum(crate::PartChecksum::Md5) => {
                "content_md5"
            }
            Self::InvalidSha256(_) | Self::WrongPartChecksum(crate::PartChecksum::Sha256) => {
                "checksum_sha256"
            }
            Self::EmptyFile => "size_bytes",
            Self::PartSizeOutOfRange { .. } | Self::TooManyParts { .. } => "part_size_bytes",
            Self::PartNumberOutOfRange { .. } => "part_number",
            Self::PartLengthMismatch { .. } => "content_length",
        }
    }
}

/// What a part signed with the wrong digest is told.
fn wrong_part_checksum(expected: crate::PartChecksum) -> &'static str {
    match expected {
        crate::PartChecksum::Md5 => {
            "this upload's parts are pinned by MD5: give content_md5 (16 bytes) and no checksum_sha256"
        }
        crate::PartChecksum::Sha256 => {
            "this upload's parts are pinned by SHA-256 (created with part_checksum SHA256): give checksum_sha256 (32 bytes) and no content_md5"
        }
    }
}
