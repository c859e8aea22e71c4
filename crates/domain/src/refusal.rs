//! Why a call was refused, as a stable code: every refusal carries one in its
//! `google.rpc.ErrorInfo` detail (`reason`), so clients branch on the code, not on
//! the sentence. The README's table lists them, held equal by a test.

use crate::words::vocabulary;

vocabulary! {
    /// The stable code of a refused call.
    pub enum Refusal as "refusal" {
        /// No token, or one that is not valid here.
        Unauthenticated = "UNAUTHENTICATED",
        /// The authorization table does not allow this caller this call.
        PermissionDenied = "PERMISSION_DENIED",
        /// A field of the request is malformed (see the BadRequest detail).
        InvalidArgument = "INVALID_ARGUMENT",
        /// The declared type is not on the allow-list.
        TypeNotAccepted = "TYPE_NOT_ACCEPTED",
        /// The file is a program or a script, by its name or declared type, and
        /// the marketplace sells no software.
        SoftwareNotAccepted = "SOFTWARE_NOT_ACCEPTED",
        /// The file's name says another type than the one declared.
        NameMismatch = "NAME_MISMATCH",
        /// The file is larger than the seller's group may upload.
        OverSizeLimit = "OVER_SIZE_LIMIT",
        /// Too many CreateUpload calls in a minute (see RetryInfo).
        CreateRateExceeded = "CREATE_RATE_EXCEEDED",
        /// Too many unfinished uploads: complete or abort some first.
        TooManyOpenUploads = "TOO_MANY_OPEN_UPLOADS",
        /// Too many WatchProgress/WatchItem streams open at once.
        TooManyWatches = "TOO_MANY_WATCHES",
        /// The upload does not exist for the caller.
        UploadNotFound = "UPLOAD_NOT_FOUND",
        /// The item does not exist for the caller.
        ItemNotFound = "ITEM_NOT_FOUND",
        /// The item has no such file.
        FileNotFound = "FILE_NOT_FOUND",
        /// The file has no such version.
        VersionNotFound = "VERSION_NOT_FOUND",
        /// The version's file is not stored after a clean scan.
        NotDownloadable = "NOT_DOWNLOADABLE",
        /// A later scan found malware in the version's file.
        VersionQuarantined = "VERSION_QUARANTINED",
        /// CreateUpload's idempotency key already made another upload.
        UploadKeyReused = "UPLOAD_KEY_REUSED",
        /// Only the item's owner may do this.
        NotTheOwner = "NOT_THE_OWNER",
        /// The upload was aborted or has expired.
        UploadEnded = "UPLOAD_ENDED",
        /// The upload's deadline passed.
        UploadExpired = "UPLOAD_EXPIRED",
        /// The upload no longer takes parts.
        NotAcceptingParts = "NOT_ACCEPTING_PARTS",
        /// Only an unfinished upload can be aborted.
        NotAbortable = "NOT_ABORTABLE",
        /// The upload changed state while the call ran.
        MovedOn = "MOVED_ON",
        /// Parts the plan needs are not in the store.
        PartsMissing = "PARTS_MISSING",
        /// Parts in the store are not what was signed.
        PartsMismatched = "PARTS_MISMATCHED",
        /// The stored parts do not add up to the declared size.
        PartsSizeMismatch = "PARTS_SIZE_MISMATCH",
        /// A part re-sent over a broken connection must be sent again.
        PartResendBrokeOff = "PART_RESEND_BROKE_OFF",
        /// The store could not assemble the parts.
        NotAssembled = "NOT_ASSEMBLED",
        /// The store no longer holds the upload's parts.
        PartsGone = "PARTS_GONE",
        /// SubmitItem's idempotency key was used for another submission.
        SubmissionKeyReused = "SUBMISSION_KEY_REUSED",
        /// The item's kind cannot change.
        KindChanged = "KIND_CHANGED",
        /// A new item needs a file.
        NoFiles = "NO_FILES",
        /// The item would hold more files than its kind allows.
        TooManyFiles = "TOO_MANY_FILES",
        /// The file is not a file of the item.
        UnknownFile = "UNKNOWN_FILE",
        /// One file was given two uploads.
        DuplicateFile = "DUPLICATE_FILE",
        /// The upload is not ready to be submitted.
        UploadNotReady = "UPLOAD_NOT_READY",
        /// A video item's file must be a video.
        NotAVideo = "NOT_A_VIDEO",
        /// The database or the store is away; retry.
        Unavailable = "UNAVAILABLE",
        /// A fault of the service, logged.
        Internal = "INTERNAL",
    }
}

/// The `domain` of every ErrorInfo the service sends.
pub const REFUSAL_DOMAIN: &str = "upload.marketplace";

impl Refusal {
    /// What the code means, as the README's table says it.
    pub fn meaning(self) -> &'static str {
        match self {
            Self::Unauthenticated => "no token, or one that is not valid here",
            Self::PermissionDenied => "the authorization table does not allow this call",
            Self::InvalidArgument => "a field is malformed; BadRequest names it",
            Self::TypeNotAccepted => "the declared type is not accepted",
            Self::SoftwareNotAccepted => "a program or a script, and no software is sold",
            Self::NameMismatch => "the file's name says another type than declared",
            Self::OverSizeLimit => "the file is over the seller's size limit",
            Self::CreateRateExceeded => "too many CreateUpload calls a minute; RetryInfo says when",
            Self::TooManyOpenUploads => "too many unfinished uploads; complete or abort some",
            Self::TooManyWatches => "too many watch streams open; RetryInfo says when to retry",
            Self::UploadNotFound => "no such upload for this caller",
            Self::ItemNotFound => "no such item for this caller",
            Self::FileNotFound => "the item has no such file",
            Self::VersionNotFound => "the file has no such version",
            Self::NotDownloadable => "the version's file is not stored clean",
            Self::VersionQuarantined => "a later scan found malware in the version's file",
            Self::UploadKeyReused => "the idempotency key made another upload",
            Self::NotTheOwner => "only the item's owner may do this",
            Self::UploadEnded => "the upload was aborted or expired",
            Self::UploadExpired => "the upload's deadline passed",
            Self::NotAcceptingParts => "the upload takes no more parts",
            Self::NotAbortable => "only an unfinished upload can be aborted",
            Self::MovedOn => "the upload changed state meanwhile",
            Self::PartsMissing => "parts are not in the store yet",
            Self::PartsMismatched => "stored parts differ from what was signed",
            Self::PartsSizeMismatch => "the stored parts do not add up to the size",
            Self::PartResendBrokeOff => "a broken re-send must be sent again",
            Self::NotAssembled => "the store could not assemble the parts",
            Self::PartsGone => "the store no longer holds the parts",
            Self::SubmissionKeyReused => "the idempotency key made another submission",
            Self::KindChanged => "an item's kind cannot change",
            Self::NoFiles => "a new item needs a file",
            Self::TooManyFiles => "more files than the item's kind allows",
            Self::UnknownFile => "not a file of this item",
            Self::DuplicateFile => "one file given two uploads",
            Self::UploadNotReady => "the upload is not ready to submit",
            Self::NotAVideo => "a video item's file must be a video",
            Self::Unavailable => "the database or the store is away; retry",
            Self::Internal => "a fault of the service, logged",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_readme_lists_every_refusal_code_with_its_meaning() {
        let rows: Vec<Vec<String>> = Refusal::ALL
            .iter()
            .map(|r| vec![r.to_string(), r.meaning().to_owned()])
            .collect();
        assert_eq!(crate::readme::table("Every refusal carries"), rows);
    }
}
