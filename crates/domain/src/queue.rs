//! The job queues, named explicitly so that renaming a Rust type never orphans
//! its jobs: the word is the `job_type` in `apalis.jobs`.

use crate::words::vocabulary;
use crate::{FailureCode, Stage, SubmissionState, UploadState};

vocabulary! {
    /// A job queue.
    pub enum Queue as "queue" {
        /// Reads the stored file once: malware scan, size, MD5, SHA-256, sniffed type.
        Scan = "upload.scan",
        /// Media facts from ffprobe (after a clean scan).
        Metadata = "upload.metadata",
        /// Thumbnails and clips from ffmpeg (after a clean scan).
        Preview = "upload.preview",
        /// Delivers a seller notification to the webhook.
        Notify = "upload.notify",
        /// Saves a submitted item's fields.
        Persist = "item.persist",
        /// Stores a submission's files in the regular bucket as new versions.
        Move = "item.move",
        /// Re-scans the stored catalogue (and ready uploads) with newer signatures.
        Rescan = "catalogue.rescan",
    }
}

impl Queue {
    /// The `job_type` in `apalis.jobs`.
    pub fn name(self) -> &'static str {
        self.as_str()
    }

    /// The queue's word without its family, as a worker is told which queues to
    /// run (`UPLOAD_WORKER_QUEUES=scan,metadata`).
    pub fn short_name(self) -> &'static str {
        let name = self.as_str();
        name.split_once('.').map_or(name, |(_, short)| short)
    }

    /// The queue whose short name or full name is `word`.
    pub fn named(word: &str) -> Result<Queue, crate::UnknownWord> {
        Self::ALL
            .iter()
            .copied()
            .find(|q| q.short_name() == word || q.as_str() == word)
            .ok_or_else(|| crate::UnknownWord::new("queue", word))
    }

    /// The queue whose job runs `stage` of an upload (the scan reads the file
    /// once for the scan and the hashes; the upload stage's last step, completion,
    /// hands over to it).
    pub fn of_stage(stage: Stage) -> Queue {
        match stage {
            Stage::Upload | Stage::Scan | Stage::Hash => Queue::Scan,
            Stage::Metadata => Queue::Metadata,
            Stage::Preview => Queue::Preview,
        }
    }

    /// The queues an upload in `state` waits on: the scan's until it has a verdict;
    /// while it is processed, the queue of each processing stage in `unsettled`;
    /// none in any other state.
    pub fn of_upload(state: UploadState, unsettled: &[Stage]) -> Vec<Queue> {
        match state {
            UploadState::Uploaded | UploadState::Scanning => vec![Queue::Scan],
            UploadState::Processing => unsettled
                .iter()
                .filter(|s| Stage::PROCESSING.contains(s))
                .map(|&s| Queue::of_stage(s))
                .collect(),
            _ => Vec::new(),
        }
    }

    /// Which uploads this queue is responsible for, as a query asks it: those in
    /// the states given and, for a queue that runs one processing stage, whose
    /// stage has not settled. `None` for queues that hold no upload up
    /// (notifications, re-scans, and submissions' queues, which
    /// [`Queue::of_submission`] answers). The inverse of [`Queue::of_upload`].
    pub fn uploads_waiting(self) -> Option<(&'static [UploadState], Option<Stage>)> {
        match self {
            Queue::Scan => Some((&[UploadState::Uploaded, UploadState::Scanning], None)),
            Queue::Metadata => Some((&[UploadState::Processing], Some(Stage::Metadata))),
            Queue::Preview => Some((&[UploadState::Processing], Some(Stage::Preview))),
            Queue::Notify | Queue::Persist | Queue::Move | Queue::Rescan => None,
        }
    }

    /// The queue a submission in `state` waits on: persist when queued, move when
    /// persisted; none once it has settled.
    pub fn of_submission(state: SubmissionState) -> Option<Queue> {
        match state {
            SubmissionState::Queued => Some(Queue::Persist),
            SubmissionState::Persisted => Some(Queue::Move),
            SubmissionState::Stored | SubmissionState::Failed => None,
        }
    }

    /// What the job's subject fails with when the queue's attempts run out: the
    /// upload for the pipeline's queues, the submission for the item's. A failed
    /// notification never fails anything (`None`): its row keeps the last error.
    pub fn exhausted_code(self) -> Option<FailureCode> {
        match self {
            Queue::Scan => Some(FailureCode::ScanFailed),
            Queue::Metadata => Some(FailureCode::MetadataFailed),
            Queue::Preview => Some(FailureCode::PreviewFailed),
            Queue::Notify | Queue::Rescan => None,
            Queue::Persist => Some(FailureCode::PersistFailed),
            Queue::Move => Some(FailureCode::MoveFailed),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queues_are_named_short_or_in_full_and_nothing_else() {
        assert_eq!(Queue::named("scan"), Ok(Queue::Scan));
        assert_eq!(Queue::named("move"), Ok(Queue::Move));
        assert_eq!(Queue::named("catalogue.rescan"), Ok(Queue::Rescan));
        assert_eq!(Queue::Persist.short_name(), "persist");
        assert!(Queue::named("scans").is_err());
        assert!(Queue::named("").is_err());
        let shorts: std::collections::HashSet<_> =
            Queue::ALL.iter().map(|q| q.short_name()).collect();
        assert_eq!(shorts.len(), Queue::ALL.len(), "short names are unique");
    }

    #[test]
    fn an_upload_waits_on_the_scan_then_on_its_unsettled_processing_stages() {
        use Stage::{Metadata, Preview, Scan};
        let cases: &[(UploadState, &[Stage], &[Queue])] = &[
            (UploadState::Uploaded, &[], &[Queue::Scan]),
            (UploadState::Scanning, &[Metadata], &[Queue::Scan]),
            (
                UploadState::Processing,
                &[Metadata, Preview],
                &[Queue::Metadata, Queue::Preview],
            ),
            (UploadState::Processing, &[Preview], &[Queue::Preview]),
            // Only processing stages are waited on while processing.
            (UploadState::Processing, &[Scan], &[]),
            (UploadState::Ready, &[Metadata], &[]),
            (UploadState::Created, &[], &[]),
            (UploadState::Quarantined, &[Preview], &[]),
        ];
        for (state, unsettled, queues) in cases {
            assert_eq!(
                &Queue::of_upload(*state, unsettled),
                queues,
                "{state} {unsettled:?}"
            );
        }
    }

    #[test]
    fn every_processing_state_is_some_queues_responsibility() {
        // An upload between completion and ready waits on some queue, or the
        // sweeper could never pick it up when its job is lost.
        for state in [
            UploadState::Uploaded,
            UploadState::Scanning,
            UploadState::Processing,
        ] {
            assert!(
                Queue::ALL
                    .iter()
                    .filter_map(|q| q.uploads_waiting())
                    .any(|(states, _)| states.contains(&state)),
                "{state}"
            );
        }
        assert_eq!(
            Queue::of_submission(SubmissionState::Queued),
            Some(Queue::Persist)
        );
        assert_eq!(
            Queue::of_submission(SubmissionState::Persisted),
            Some(Queue::Move)
        );
        assert_eq!(Queue::of_submission(SubmissionState::Stored), None);
    }

    #[test]
    fn the_queues_an_upload_waits_on_and_the_uploads_a_queue_holds_agree() {
        let unsettled_sets: &[&[Stage]] = &[
            &[],
            &[Stage::Metadata],
            &[Stage::Preview],
            &[Stage::Metadata, Stage::Preview],
        ];
        for &queue in Queue::ALL {
            for &state in UploadState::ALL {
                for unsettled in unsettled_sets {
                    let holds = queue.uploads_waiting().is_some_and(|(states, stage)| {
                        states.contains(&state) && stage.is_none_or(|s| unsettled.contains(&s))
                    });
                    assert_eq!(
                        Queue::of_upload(state, unsettled).contains(&queue),
                        holds,
                        "{queue} {state} {unsettled:?}"
                    );
                }
            }
        }
    }
}
