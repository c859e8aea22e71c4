use crate::words::vocabulary;

vocabulary! {
    /// A step of an upload's life with its own progress.
    pub enum Stage as "stage" {
        /// Parts travelling from the client to the store.
        Upload = "upload",
        /// The malware scan.
        Scan = "scan",
        /// Size, MD5, SHA-256 and type sniffing.
        Hash = "hash",
        /// Media facts.
        Metadata = "metadata",
        /// Thumbnails and clips.
        Preview = "preview",
    }
}

vocabulary! {
    /// Whether a stage has run.
    pub enum StageStatus as "stage status" {
        /// Not started.
        Pending = "pending",
        /// Under way.
        Running = "running",
        /// Finished.
        Done = "done",
        /// Stopped by an error.
        Failed = "failed",
        /// Not needed for this file.
        Skipped = "skipped",
    }
}

impl Stage {
    /// The stages that run after a clean scan; the last of them to settle makes the
    /// upload ready.
    pub const PROCESSING: [Stage; 2] = [Stage::Metadata, Stage::Preview];
}

impl StageStatus {
    /// True once the stage will not run again (done, or not needed).
    pub const fn is_settled(self) -> bool {
        matches!(self, Self::Done | Self::Skipped)
    }

    /// Every settled status, for queries that filter by it (`is_settled` in a list).
    pub const SETTLED: [StageStatus; 2] = [StageStatus::Done, StageStatus::Skipped];
}

/// Whether an upload's processing is over: every processing stage settled.
/// `statuses` are the recorded ones; a processing stage with none has not settled.
pub fn processing_settled(statuses: &[(Stage, StageStatus)]) -> bool {
    Stage::PROCESSING.iter().all(|stage| {
        statuses
            .iter()
            .any(|(s, status)| s == stage && status.is_settled())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_settled_list_is_exactly_the_statuses_is_settled_names() {
        for status in StageStatus::ALL {
            assert_eq!(
                StageStatus::SETTLED.contains(status),
                status.is_settled(),
                "{status}"
            );
        }
    }

    #[test]
    fn processing_is_over_once_metadata_and_preview_both_settled() {
        use Stage::{Metadata, Preview, Scan};
        use StageStatus::{Done, Failed, Pending, Running, Skipped};
        let cases: &[(&[(Stage, StageStatus)], bool)] = &[
            (&[(Metadata, Done), (Preview, Done)], true),
            (&[(Metadata, Skipped), (Preview, Done)], true),
            (&[(Metadata, Done), (Preview, Running)], false),
            (&[(Metadata, Done), (Preview, Pending)], false),
            (&[(Metadata, Failed), (Preview, Done)], false),
            // A stage with no record has not run.
            (&[(Metadata, Done)], false),
            (&[(Scan, Done), (Preview, Done)], false),
            (&[], false),
        ];
        for (statuses, over) in cases {
            assert_eq!(processing_settled(statuses), *over, "{statuses:?}");
        }
    }
}
