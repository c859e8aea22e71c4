//! The service's buckets, by role, and the kinds of objects made from files.

use crate::words::vocabulary;

vocabulary! {
    /// A bucket by its role. The word is the role (stored with previews, for
    /// example), and the default bucket name; deployments may name theirs otherwise.
    pub enum Bucket as "bucket" {
        /// Uploads land here; incomplete uploads and old objects are cleaned by
        /// lifecycle rules.
        Temp = "temp",
        /// Infected files; objects expire after [`QUARANTINE_DAYS`].
        Quarantine = "quarantine",
        /// Content-addressed files and their previews (and held content); nothing
        /// here expires.
        Regular = "regular",
    }
}

/// How long the quarantine bucket keeps an object: what its lifecycle rule says,
/// and what sellers are told.
pub const QUARANTINE_DAYS: i32 = 4;

vocabulary! {
    /// What a preview object is.
    pub enum PreviewKind as "preview kind" {
        /// A still image (a video's poster, an image's thumbnail).
        Thumbnail = "thumbnail",
        /// A short low-resolution video clip.
        Clip = "clip",
    }
}
