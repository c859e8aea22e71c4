use crate::ScanVerdict;
use crate::words::vocabulary;

vocabulary! {
    /// Where an upload is in its life. Changes only through [`UploadState::apply`].
    pub enum UploadState as "upload state" {
        /// The multipart upload exists; no part signed yet.
        Created = "created",
        /// Parts are being signed and sent.
        Uploading = "uploading",
        /// The object is assembled in the temp bucket; processing is queued.
        Uploaded = "uploaded",
        /// The malware scan is running.
        Scanning = "scanning",
        /// Scanned clean; metadata and previews are being made.
        Processing = "processing",
        /// Processed and clean; may be submitted with an item.
        Ready = "ready",
        /// Attached to an item whose saving is queued.
        Submitted = "submitted",
        /// Moved to the regular bucket as a version of an item's file.
        Stored = "stored",
        /// Malware found; moved to quarantine.
        Quarantined = "quarantined",
        /// Not acceptable (type policy, for example).
        Rejected = "rejected",
        /// Background work failed after its retries.
        Failed = "failed",
        /// Stopped by the seller or the system before completion.
        Aborted = "aborted",
        /// Not completed before its deadline.
        Expired = "expired",
    }
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
    /// The scan finished with this verdict: clean goes on to processing, and
    /// nothing else reaches processing.
    Scanned(ScanVerdict),
    /// A later scan (newer signatures) found malware in a ready file.
    FoundInfected,
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
    /// An operator retried a scan that failed: the file is scanned again.
    RetriedScan,
    /// An operator retried processing that failed: its failed stages run again.
    RetriedProcessing,
    /// An operator judged a quarantined file clean: it goes on to processing.
    QuarantineReleased,
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
            (S::Scanning, E::Scanned(ScanVerdict::Clean)) => S::Processing,
            (S::Scanning, E::Scanned(ScanVerdict::Infected)) => S::Quarantined,
            (S::Scanning, E::Scanned(ScanVerdict::Unscannable)) => S::Rejected,
            (S::Ready, E::FoundInfected) => S::Quarantined,
            (S::Processing, E::ProcessingDone) => S::Ready,
            (S::Scanning | S::Processing, E::Rejected) => S::Rejected,
            (S::Uploaded | S::Scanning | S::Processing | S::Submitted, E::Failed) => S::Failed,
            (S::Ready, E::Submitted) => S::Submitted,
            (S::Submitted, E::Stored) => S::Stored,
            (S::Submitted, E::Released) => S::Ready,
            (S::Created | S::Uploading, E::Aborted) => S::Aborted,
            // Unfinished past its deadline, or ready but never submitted in time (its
            // bytes would otherwise vanish under a late submission).
            (S::Created | S::Uploading | S::Ready, E::Expired) => S::Expired,
            (S::Failed, E::RetriedScan) => S::Uploaded,
            (S::Failed, E::RetriedProcessing) => S::Processing,
            (S::Quarantined, E::QuarantineReleased) => S::Processing,
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
}

#[cfg(test)]
mod tests {
    use super::*;
    use UploadEvent as E;
    use UploadState as S;

    #[test]
    fn only_an_operator_takes_failed_and_quarantined_uploads_back() {
        assert_eq!(S::Failed.apply(E::RetriedScan), Ok(S::Uploaded));
        assert_eq!(S::Failed.apply(E::RetriedProcessing), Ok(S::Processing));
        assert_eq!(
            S::Quarantined.apply(E::QuarantineReleased),
            Ok(S::Processing)
        );
        for from in [S::Ready, S::Stored, S::Rejected, S::Scanning] {
            assert!(from.apply(E::RetriedScan).is_err(), "{from}");
            assert!(from.apply(E::QuarantineReleased).is_err(), "{from}");
        }
    }

    #[test]
    fn happy_path_reaches_stored() {
        let mut s = S::Created;
        for e in [
            E::PartSigned,
            E::PartSigned,
            E::Completed,
            E::ScanStarted,
            E::Scanned(ScanVerdict::Clean),
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
            .iter()
            .copied()
            .filter(|s| s.is_settled() && *s != S::Ready)
        {
            for e in [
                E::Completed,
                E::Scanned(ScanVerdict::Clean),
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
        let infected = E::Scanned(ScanVerdict::Infected);
        assert_eq!(S::Scanning.apply(infected), Ok(S::Quarantined));
        assert!(S::Processing.apply(infected).is_err());
    }

    #[test]
    fn an_unscannable_file_is_rejected_and_never_ready() {
        let unscannable = E::Scanned(ScanVerdict::Unscannable);
        assert_eq!(S::Scanning.apply(unscannable), Ok(S::Rejected));
        for from in S::ALL {
            if *from != S::Scanning {
                assert!(from.apply(unscannable).is_err(), "{from}");
            }
        }
    }

    #[test]
    fn a_ready_file_found_infected_later_is_quarantined() {
        assert_eq!(S::Ready.apply(E::FoundInfected), Ok(S::Quarantined));
        assert!(S::Submitted.apply(E::FoundInfected).is_err());
        assert!(S::Stored.apply(E::FoundInfected).is_err());
    }

    /// Every event a test can name, verdicts included.
    fn every_event() -> Vec<E> {
        let mut events = vec![
            E::PartSigned,
            E::Completed,
            E::ScanStarted,
            E::FoundInfected,
            E::ProcessingDone,
            E::Rejected,
            E::Failed,
            E::Submitted,
            E::Stored,
            E::Released,
            E::Aborted,
            E::Expired,
        ];
        events.extend(ScanVerdict::ALL.iter().map(|v| E::Scanned(*v)));
        events
    }

    #[test]
    fn processing_is_reached_only_by_a_clean_scan() {
        for from in S::ALL {
            for event in every_event() {
                if from.apply(event) == Ok(S::Processing) {
                    assert_eq!(
                        (*from, event),
                        (S::Scanning, E::Scanned(ScanVerdict::Clean)),
                        "{from} reached processing by {event:?}"
                    );
                }
            }
        }
        assert!(S::Uploaded.apply(E::Scanned(ScanVerdict::Clean)).is_err());
    }
}
