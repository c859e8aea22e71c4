//! Why an upload or a submission stopped: one stable code per reason, each with the
//! sentence a seller reads and the state it leaves an upload in.

use crate::UploadState;
use crate::words::vocabulary;

vocabulary! {
    /// Every failure code the service records on an upload or a submission. The
    /// README's failure tables list exactly these (a test holds them equal).
    pub enum FailureCode as "failure code" {
        /// The seller called AbortUpload.
        Aborted = "aborted",
        /// Not completed, or not submitted, before its deadline.
        Expired = "expired",
        /// clamd found malware.
        Infected = "infected",
        /// The scanner could not inspect the whole file.
        Unscannable = "unscannable",
        /// The bytes are not the declared type.
        TypeMismatch = "type_mismatch",
        /// The type is not on the allow-list.
        TypeNotAllowed = "type_not_allowed",
        /// A program or a script, where the marketplace sells no software.
        SoftwareNotAllowed = "software_not_allowed",
        /// Reading or scanning the file failed on every attempt.
        ScanFailed = "scan_failed",
        /// ffprobe failed on every attempt.
        MetadataFailed = "metadata_failed",
        /// ffmpeg failed on every attempt.
        PreviewFailed = "preview_failed",
        /// Processing stopped without a job and every attempt was spent.
        ProcessingStalled = "processing_stalled",
        /// The assembled object's size is not the declared size.
        SizeMismatch = "size_mismatch",
        /// A part of the assembled object holds other bytes than the ones signed
        /// for it (checked by the scan where the store's ETags are not MD5s).
        PartMismatch = "part_mismatch",
        /// The store refused a request for a reason retrying cannot fix.
        StoreRejected = "store_rejected",
        /// The regular bucket holds other content under the file's MD5.
        ContentConflict = "content_conflict",
        /// The same content is held for review, or quarantined, after a later
        /// scan flagged it: it is not stored again meanwhile.
        ContentHeld = "content_held",
        /// Saving the item failed on every attempt.
        PersistFailed = "persist_failed",
        /// Storing the item's files failed on every attempt.
        MoveFailed = "move_failed",
        /// A submission's work stopped without a job and every attempt was spent.
        SubmissionStalled = "submission_stalled",
        /// An upload of the submission vanished from the database.
        UploadMissing = "upload_missing",
    }
}

/// What a failure code can be recorded on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailureSubject {
    /// An upload (`uploads.failure_code`).
    Upload,
    /// An item submission (`item_submissions.failure_code`).
    Submission,
}

impl FailureCode {
    /// What the code means, in words for the seller.
    pub const fn meaning(self) -> &'static str {
        match self {
            Self::Aborted => "the upload was aborted by the seller",
            Self::Expired => "the upload was not completed, or not submitted, before its deadline",
            Self::Infected => "malware was found in the file; it is quarantined",
            Self::Unscannable => {
                "the malware scanner could not inspect the whole file (password-protected, nested too deeply, or too large once unpacked)"
            }
            Self::TypeMismatch => {
                "the file's contents are not the type it was declared as, or its name says"
            }
            Self::TypeNotAllowed => "files of this type are not accepted on the marketplace",
            Self::SoftwareNotAllowed => {
                "the file is a program or a script, and the marketplace does not sell software"
            }
            Self::ScanFailed => "the file could not be read or scanned, however often it was tried",
            Self::MetadataFailed => {
                "the file's media facts could not be read, however often it was tried"
            }
            Self::PreviewFailed => {
                "the file's previews could not be made, however often it was tried"
            }
            Self::ProcessingStalled => "processing stopped and did not recover after every attempt",
            Self::SizeMismatch => "the stored file's size differs from the declared size",
            Self::PartMismatch => {
                "a part of the stored file holds other bytes than the ones signed for it; upload the file again"
            }
            Self::StoreRejected => "the storage refused a request that retrying cannot fix",
            Self::ContentConflict => {
                "a different file with the same MD5 is already stored; nothing was overwritten"
            }
            Self::ContentHeld => {
                "a file with the same content is held after a malware finding; it was not stored"
            }
            Self::PersistFailed => "saving the item failed, however often it was tried",
            Self::MoveFailed => "storing the item's files failed, however often it was tried",
            Self::SubmissionStalled => {
                "saving the item stopped and did not recover after every attempt"
            }
            Self::UploadMissing => "an upload of the submission no longer exists",
        }
    }

    /// Whether the code can be recorded on `subject`.
    pub const fn applies_to(self, subject: FailureSubject) -> bool {
        match subject {
            FailureSubject::Upload => self.upload_state().is_some(),
            FailureSubject::Submission => matches!(
                self,
                Self::StoreRejected
                    | Self::ContentConflict
                    | Self::ContentHeld
                    | Self::PersistFailed
                    | Self::MoveFailed
                    | Self::SubmissionStalled
                    | Self::UploadMissing
            ),
        }
    }

    /// How an operator retries an upload that failed with this code: scans fail
    /// back to a new scan, processing stages back to processing; None where retrying
    /// cannot help (the file itself is at fault) or the code is not an upload's.
    pub const fn retry(self) -> Option<crate::UploadEvent> {
        match self {
            Self::ScanFailed => Some(crate::UploadEvent::RetriedScan),
            Self::MetadataFailed | Self::PreviewFailed | Self::ProcessingStalled => {
                Some(crate::UploadEvent::RetriedProcessing)
            }
            _ => None,
        }
    }

    /// The state an upload that fails with this code ends in; `None` for codes
    /// that only submissions carry.
    pub const fn upload_state(self) -> Option<UploadState> {
        match self {
            Self::Aborted => Some(UploadState::Aborted),
            Self::Expired => Some(UploadState::Expired),
            Self::Infected => Some(UploadState::Quarantined),
            Self::Unscannable
            | Self::TypeMismatch
            | Self::TypeNotAllowed
            | Self::SoftwareNotAllowed => Some(UploadState::Rejected),
            Self::ScanFailed
            | Self::MetadataFailed
            | Self::PreviewFailed
            | Self::ProcessingStalled
            | Self::SizeMismatch
            | Self::PartMismatch
            | Self::StoreRejected => Some(UploadState::Failed),
            Self::ContentConflict
            | Self::ContentHeld
            | Self::PersistFailed
            | Self::MoveFailed
            | Self::SubmissionStalled
            | Self::UploadMissing => None,
        }
    }
}

/// A failure as recorded: its code and the sentence the seller reads (the code's
/// meaning, or something more particular).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    /// The stable code.
    pub code: FailureCode,
    /// For the seller.
    pub message: String,
}

impl Failure {
    /// A failure with a message of its own.
    pub fn new(code: FailureCode, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
        }
    }

    /// A failure whose message is the code's meaning.
    pub fn of(code: FailureCode) -> Self {
        Self::new(code, code.meaning())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_code_applies_to_something_and_names_the_state_it_leaves() {
        for code in FailureCode::ALL {
            assert!(
                code.applies_to(FailureSubject::Upload)
                    || code.applies_to(FailureSubject::Submission),
                "{code} applies to nothing"
            );
            assert!(!code.meaning().is_empty());
            if let Some(state) = code.upload_state() {
                assert!(state.is_settled(), "{code} leaves {state}, not settled");
                assert_ne!(state, UploadState::Ready);
            }
        }
        assert_eq!(
            FailureCode::Infected.upload_state(),
            Some(UploadState::Quarantined)
        );
        assert!(!FailureCode::ContentConflict.applies_to(FailureSubject::Upload));
    }

    #[test]
    fn the_readme_tables_list_every_code_with_its_state_and_meaning() {
        let uploads: Vec<Vec<String>> = FailureCode::ALL
            .iter()
            .filter(|c| c.applies_to(FailureSubject::Upload))
            .map(|c| {
                let state = c.upload_state().map(|s| s.to_string()).unwrap_or_default();
                vec![c.to_string(), state, c.meaning().to_owned()]
            })
            .collect();
        assert_eq!(
            crate::readme::table("An upload that stops carries"),
            uploads
        );
        let submissions: Vec<Vec<String>> = FailureCode::ALL
            .iter()
            .filter(|c| c.applies_to(FailureSubject::Submission))
            .map(|c| vec![c.to_string(), c.meaning().to_owned()])
            .collect();
        assert_eq!(
            crate::readme::table("A submission that fails carries"),
            submissions
        );
    }
}
