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
        /// A stored file was found infected by a later scan with newer
        /// signatures: its versions are no longer downloadable and it is in
        /// quarantine.
        FileQuarantined = "file.quarantined",
        /// An operator judged a quarantined file safe: it is being processed.
        UploadReleased = "upload.released",
        /// Processing gave up after its attempts.
        UploadFailed = "upload.failed",
        /// A submitted item is saved and its files stored.
        ItemStored = "item.stored",
        /// A submission gave up after its attempts.
        ItemFailed = "item.failed",
    }
}
