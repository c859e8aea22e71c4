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

impl StageStatus {
    /// True once the stage will not run again (done, or not needed).
    pub const fn is_settled(self) -> bool {
        matches!(self, Self::Done | Self::Skipped)
    }
}
