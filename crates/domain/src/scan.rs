//! The malware scan's verdict on a file.

use crate::words::vocabulary;

vocabulary! {
    /// What the scanner concluded. Only [`ScanVerdict::Clean`] lets a file go on;
    /// reading any other word fails, so a verdict this code does not know is never
    /// taken for clean.
    pub enum ScanVerdict as "scan verdict" {
        /// The scanner read the whole file and found nothing.
        Clean = "clean",
        /// A signature matched.
        Infected = "infected",
    }
}

impl ScanVerdict {
    /// True only for a clean verdict.
    pub const fn is_clean(self) -> bool {
        matches!(self, Self::Clean)
    }
}
