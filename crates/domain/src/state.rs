use std::fmt;
use std::str::FromStr;

/// Where an upload is in its life. Changes only through [`UploadState::apply`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum UploadState {
    /// The multipart upload exists; no part signed yet.
    Created,
    /// Parts are being signed and sent.
    Uploading,
    /// The object is assembled in the temp bucket; processing is queued.
    Uploaded,
    /// The malware scan is running.
    Scanning,
    /// Hashes, metadata and previews are being made.
    Processing,
    /// Processed and clean; may be submitted with an item.
    Ready,
    /// Attached to an item whose saving is queued.
    Submitted,
    /// Moved to the regular bucket as a version of an item's file.
    Stored,
    /// Malware found; moved to quarantine.
    Quarantined,
    /// Not acceptable (type policy, for example).
    Rejected,
    /// Background work failed after its retries.
    Failed,
    /// Stopped by the seller or the system before completion.
    Aborted,
    /// Not completed before its deadline.
    Expired,
}

/// Something that happens to an upload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UploadEvent {
    /// A part was signed.
    PartSigned,
    /// CompleteMultipartUpload succeeded.
    Completed,
    /// The scan job picked the file up.
    ScanStarted,
    /// The scan found nothing.
    ScanClean,
    /// The scan found malware.
    Infected,
    /// Processing began on a file that needs no scan stage.
    ProcessingStarted,
    /// Every processing job has finished.
    ProcessingDone,
    /// The file breaks the type policy.
    Rejected,
    /// Background work ran out of attempts.
    Failed,
    /// The seller submitted the file with an item.
    Submitted,
    /// The file is stored in the regular bucket.
    Stored,
    /// The submission it was part of failed; it may be submitted again.
    Released,
    /// The seller or the system aborted the upload.
    Aborted,
    /// The upload passed its deadline unfinished.
    Expired,
}

/// An event that cannot happen in the current state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("an upload that is {from} cannot be {event:?}")]
pub struct TransitionError {
    /// The state the upload was in.
    pub from: UploadState,
    /// The event refused.
    pub event: UploadEvent,
}

impl UploadState {
    /// The one transition function: the state after `event`, or why not.
    pub fn apply(self, event: UploadEvent) -> Result<UploadState, TransitionError> {
        use UploadEvent as E;
        use UploadState as S;
        let next = match (self, event) {
            (S::Created | S::Uploading, E::PartSigned) => S::Uploading,
            (S::Uploading, E::Completed) => S::Uploaded,
            (S::Uploaded, E::ScanStarted) => S::Scanning,
            (S::Scanning, E::ScanClean) => S::Processing,
            (S::Scanning, E::Infected) => S::Quarantined,
            (S::Uploaded, E::ProcessingStarted) => S::Processing,
            (S::Processing, E::ProcessingDone) => S::Ready,
            (S::Scanning | S::Processing, E::Rejected) => S::Rejected,
            (S::Uploaded | S::Scanning | S::Processing | S::Submitted, E::Failed) => S::Failed,
            (S::Ready, E::Submitted) => S::Submitted,
            (S::Submitted, E::Stored) => S::Stored,
            (S::Submitted, E::Released) => S::Ready,
            (S::Created | S::Uploading, E::Aborted) => S::Aborted,
            (S::Created | S::Uploading, E::Expired) => S::Expired,
            (from, event) => return Err(TransitionError { from, event }),
        };
        Ok(next)
    }

    /// True when nothing more happens to the upload unless the seller acts.
    pub fn is_settled(self) -> bool {
        matches!(
            self,
            Self::Ready
                | Self::Stored
                | Self::Quarantined
                | Self::Rejected
                | Self::Failed
                | Self::Aborted
                | Self::Expired
        )
    }

    /// True while parts may still be signed and sent.
    pub fn accepts_parts(self) -> bool {
        matches!(self, Self::Created | Self::Uploading)
    }

    /// The name stored in the database.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Created => "created",
            Self::Uploading => "uploading",
            Self::Uploaded => "uploaded",
            Self::Scanning => "scanning",
            Self::Processing => "processing",
            Self::Ready => "ready",
            Self::Submitted => "submitted",
            Self::Stored => "stored",
            Self::Quarantined => "quarantined",
            Self::Rejected => "rejected",
            Self::Failed => "failed",
            Self::Aborted => "aborted",
            Self::Expired => "expired",
        }
    }

    /// Every state, for exhaustive tests and SQL checks.
    pub const ALL: [UploadState; 13] = [
        Self::Created,
        Self::Uploading,
        Self::Uploaded,
        Self::Scanning,
        Self::Processing,
        Self::Ready,
        Self::Submitted,
        Self::Stored,
        Self::Quarantined,
        Self::Rejected,
        Self::Failed,
        Self::Aborted,
        Self::Expired,
    ];
}

impl FromStr for UploadState {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|state| state.as_str() == s)
            .ok_or_else(|| format!("unknown upload state {s:?}"))
    }
}

impl fmt::Display for UploadState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use UploadEvent as E;
    use UploadState as S;

    #[test]
    fn happy_path_reaches_stored() {
        let mut s = S::Created;
        for e in [
            E::PartSigned,
            E::PartSigned,
            E::Completed,
            E::ScanStarted,
            E::ScanClean,
        ] {
            s = s.apply(e).unwrap();
        }
        assert_eq!(s, S::Processing);
        s = s.apply(E::ProcessingDone).unwrap();
        assert!(s.is_settled());
        s = s.apply(E::Submitted).unwrap().apply(E::Stored).unwrap();
        assert_eq!(s, S::Stored);
    }

    #[test]
    fn settled_states_accept_no_background_event() {
        for s in S::ALL
            .into_iter()
            .filter(|s| s.is_settled() && *s != S::Ready)
        {
            for e in [
                E::Completed,
                E::ScanClean,
                E::ProcessingDone,
                E::Failed,
                E::Aborted,
            ] {
                assert!(s.apply(e).is_err(), "{s} accepted {e:?}");
            }
        }
    }

    #[test]
    fn completed_upload_cannot_be_aborted_or_signed() {
        assert!(S::Uploaded.apply(E::Aborted).is_err());
        assert!(S::Uploaded.apply(E::PartSigned).is_err());
        assert!(!S::Uploaded.accepts_parts());
    }

    #[test]
    fn infected_only_from_scanning() {
        assert_eq!(S::Scanning.apply(E::Infected), Ok(S::Quarantined));
        assert!(S::Processing.apply(E::Infected).is_err());
    }

    #[test]
    fn names_round_trip() {
        for s in S::ALL {
            assert_eq!(s.as_str().parse::<S>().unwrap(), s);
        }
    }
}
