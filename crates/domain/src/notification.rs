//! What the seller is told about.

use crate::words::vocabulary;

vocabulary! {
    /// The kind of a seller notification, sent as the webhook's `x-upload-event`.
    pub enum NotificationKind as "notification kind" {
        /// Malware was found; the file is in quarantine.
        UploadQuarantined = "upload.quarantined",
        /// The file is not acceptable (type policy, or the scanner could not
        /// inspect it).
        UploadRejected = "upload.rejected",
        /// A stored file that a later scan flagged is held for review: its
        /// versions cannot be downloaded meanwhile, and nothing is deleted.
        FileHeld = "file.held",
        /// An operator released a held file: its versions download again.
        FileReleased = "file.released",
        /// An operator confirmed a held file's finding: its versions will not
        /// download again, and the file is deleted after its days in quarantine.
        FileQuarantined = "file.quarantined",
        /// An operator judged a quarantined upload safe: it is being processed.
        UploadReleased = "upload.released",
        /// Processing gave up after its attempts.
        UploadFailed = "upload.failed",
        /// A submitted item is saved and its files stored.
        ItemStored = "item.stored",
        /// A submission gave up after its attempts.
        ItemFailed = "item.failed",
    }
}
