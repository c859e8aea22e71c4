//! The history of uploads and submissions: why each one changed ([`ChangeCause`])
//! and who changed it ([`Actor`]). Every state change writes one history row in
//! the transaction that makes it; an operator's action writes one too, even when
//! the state stays where it was.

use crate::words::vocabulary;
use crate::{Caller, Role, SubmissionEvent, UploadEvent};

vocabulary! {
    /// Why an upload or a submission changed, or what an operator did to it.
    pub enum ChangeCause as "change cause" {
        /// The upload or submission was created.
        Created = "created",
        /// A part was signed (the first one moves the upload to uploading).
        PartSigned = "part_signed",
        /// The parts were assembled in the store.
        Completed = "completed",
        /// The scan job picked the file up.
        ScanStarted = "scan_started",
        /// The scan gave its verdict.
        Scanned = "scanned",
        /// A re-scan with newer signatures found malware in a ready file.
        FoundInfected = "found_infected",
        /// Every processing stage finished.
        ProcessingDone = "processing_done",
        /// The file breaks the type policy.
        Rejected = "rejected",
        /// Background work ran out of attempts.
        Failed = "failed",
        /// The file was submitted with an item.
        Submitted = "submitted",
        /// The persist job saved the item's fields.
        Persisted = "persisted",
        /// The file (or every file of a submission) is stored.
        Stored = "stored",
        /// The submission that held the file failed; it may be submitted again.
        Released = "released",
        /// The seller aborted the upload.
        Aborted = "aborted",
        /// The deadline passed.
        Expired = "expired",
        /// An operator retried failed work from the stage that failed.
        Retried = "retried",
        /// An operator queued the job of the current stage again.
        Requeued = "requeued",
        /// An operator had a notification delivered again, under the same id.
        Redelivered = "redelivered",
        /// An operator judged a quarantined file clean: it goes on to processing.
        QuarantineReleased = "quarantine_released",
        /// An operator confirmed a quarantine: the file goes when its days in
        /// quarantine end.
        QuarantineConfirmed = "quarantine_confirmed",
    }
}

impl From<UploadEvent> for ChangeCause {
    fn from(event: UploadEvent) -> Self {
        match event {
            UploadEvent::PartSigned => Self::PartSigned,
            UploadEvent::Completed => Self::Completed,
            UploadEvent::ScanStarted => Self::ScanStarted,
            UploadEvent::Scanned(_) => Self::Scanned,
            UploadEvent::FoundInfected => Self::FoundInfected,
            UploadEvent::ProcessingDone => Self::ProcessingDone,
            UploadEvent::Rejected => Self::Rejected,
            UploadEvent::Failed => Self::Failed,
            UploadEvent::Submitted => Self::Submitted,
            UploadEvent::Stored => Self::Stored,
            UploadEvent::Released => Self::Released,
            UploadEvent::Aborted => Self::Aborted,
            UploadEvent::Expired => Self::Expired,
            UploadEvent::RetriedScan | UploadEvent::RetriedProcessing => Self::Retried,
            UploadEvent::QuarantineReleased => Self::QuarantineReleased,
        }
    }
}

impl From<SubmissionEvent> for ChangeCause {
    fn from(event: SubmissionEvent) -> Self {
        match event {
            SubmissionEvent::Persisted => Self::Persisted,
            SubmissionEvent::Stored => Self::Stored,
            SubmissionEvent::Failed => Self::Failed,
            SubmissionEvent::Retried => Self::Retried,
        }
    }
}

/// Who made a change: written into the history as its name (and, for a job, the
/// attempt it was on).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Actor {
    /// A caller of the API: `seller:s-1`, or `service:orders for seller:s-1` when a
    /// service acts for someone.
    Caller {
        /// Who really called.
        role: Role,
        /// Their subject.
        subject: String,
        /// Whom they acted for, when it is someone else.
        acting_for: Option<String>,
    },
    /// A background job, on its queue and attempt (1 for the first).
    Job {
        /// The queue's name.
        queue: &'static str,
        /// The attempt.
        attempt: u32,
    },
    /// The sweeper (deadlines, stalled work).
    Sweeper,
    /// An operator through the admin tool, by name.
    Operator(String),
}

impl Actor {
    /// The actor behind an API call.
    pub fn caller(caller: &Caller) -> Self {
        let subject = caller.principal.subject.as_str().to_owned();
        let acting_for =
            (caller.seller_id.as_str() != subject).then(|| caller.seller_id.as_str().to_owned());
        Self::Caller {
            role: caller.principal.role,
            subject,
            acting_for,
        }
    }

    /// A job on `queue`, attempt `attempt`.
    pub fn job(queue: &'static str, attempt: u32) -> Self {
        Self::Job { queue, attempt }
    }

    /// The attempt, for a job.
    pub fn attempt(&self) -> Option<i32> {
        match self {
            Self::Job { attempt, .. } => i32::try_from(*attempt).ok(),
            _ => None,
        }
    }
}

impl std::fmt::Display for Actor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Caller {
                role,
                subject,
                acting_for: None,
            } => write!(f, "{role}:{subject}"),
            Self::Caller {
                role,
                subject,
                acting_for: Some(whom),
            } => write!(f, "{role}:{subject} for {whom}"),
            Self::Job { queue, .. } => write!(f, "job:{queue}"),
            Self::Sweeper => f.write_str("sweeper"),
            Self::Operator(name) => write!(f, "operator:{name}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Principal, Reach, SellerGroup, SellerId};

    fn id(s: &str) -> SellerId {
        s.parse().expect("id")
    }

    #[test]
    fn callers_are_named_by_role_and_subject_and_whom_they_act_for() {
        let seller = Caller::seller(id("s-1"), SellerGroup::Standard);
        assert_eq!(Actor::caller(&seller).to_string(), "seller:s-1");
        let service = Caller {
            seller_id: id("s-1"),
            group: SellerGroup::Standard,
            reach: Reach::Own,
            principal: Principal {
                role: Role::Service,
                subject: id("orders"),
                scopes: Vec::new(),
            },
        };
        assert_eq!(
            Actor::caller(&service).to_string(),
            "service:orders for s-1"
        );
        assert_eq!(Actor::caller(&service).attempt(), None);
    }

    #[test]
    fn jobs_carry_their_attempt_and_operators_their_name() {
        let job = Actor::job("scan", 3);
        assert_eq!(
            (job.to_string(), job.attempt()),
            ("job:scan".into(), Some(3))
        );
        assert_eq!(Actor::Operator("ana".into()).to_string(), "operator:ana");
        assert_eq!(Actor::Sweeper.to_string(), "sweeper");
    }

    #[test]
    fn every_upload_and_submission_event_has_a_cause() {
        use crate::ScanVerdict;
        assert_eq!(
            ChangeCause::from(UploadEvent::Scanned(ScanVerdict::Infected)),
            ChangeCause::Scanned
        );
        assert_eq!(
            ChangeCause::from(SubmissionEvent::Retried),
            ChangeCause::Retried
        );
        assert_eq!("requeued".parse(), Ok(ChangeCause::Requeued));
        assert!("reset".parse::<ChangeCause>().is_err());
    }
}
