//! What a later scan's finding does to content that passed its first scan. A
//! false alarm must never destroy a product: stored content that a re-scan flags
//! is held (kept, out of every expiring rule, refused for download) until an
//! operator releases it (downloadable again, the finding overridden) or confirms
//! it (quarantined; deleted when its days there end). A finding an operator has
//! overridden does not hold or quarantine the same content again; another does.

use crate::words::vocabulary;
use crate::{Classified, ScanVerdict};

vocabulary! {
    /// Where a stored object stands.
    pub enum ObjectStanding as "object standing" {
        /// At `files/<md5>`, downloadable.
        Stored = "stored",
        /// Flagged by a later scan: kept at `held/<md5>`, refused for download,
        /// until an operator decides.
        Held = "held",
        /// Confirmed malware (or quarantined before holds existed): in the
        /// quarantine bucket, deleted when its days there end.
        Quarantined = "quarantined",
    }
}

impl ObjectStanding {
    /// True where versions of it may be downloaded.
    pub const fn downloadable(self) -> bool {
        matches!(self, Self::Stored)
    }
}

vocabulary! {
    /// What happened to a stored object (its `object_events` history).
    pub enum ObjectChange as "object change" {
        /// A later scan flagged it: held.
        Held = "held",
        /// While held, a scan with newer signatures found it clean.
        CleanWhileHeld = "clean_while_held",
        /// An operator released it: downloadable again.
        Released = "released",
        /// An operator confirmed it: quarantined.
        Confirmed = "confirmed",
    }
}

/// What a re-scan's verdict does to a stored object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoredRescan {
    /// Nothing changes but the verdict's provenance: clean, unscannable under the
    /// new signatures (left downloadable, logged), or the finding an operator
    /// overrode. `verdict` is what to record (a release stays a release).
    Stays {
        /// The verdict to record.
        verdict: ScanVerdict,
    },
    /// A finding no operator overrode, on content downloadable until now: hold it.
    Hold {
        /// The malware's name.
        signature: String,
    },
    /// Held, and the finding stands: `signature` is the newer signatures' name for
    /// it, or `None` where they could not read the content (unscannable, or its
    /// bytes missing), so the finding that held it stays on record.
    StillHeld {
        /// The malware's name under the newer signatures.
        signature: Option<String>,
    },
    /// Held, and the newer signatures find it clean: listed for operators, still
    /// held until one decides.
    CleanWhileHeld,
}

/// What a re-scan classified as `classified` does to an object standing as
/// `standing`, whose release (if any) overrode `released`.
pub fn rescan_stored(
    standing: ObjectStanding,
    current: ScanVerdict,
    released: Option<&str>,
    classified: &Classified,
) -> StoredRescan {
    let infected = classified.verdict == ScanVerdict::Infected;
    let finding = classified.finding.clone().unwrap_or_default();
    match (standing, infected) {
        (ObjectStanding::Held, true) => StoredRescan::StillHeld {
            signature: Some(finding),
        },
        (ObjectStanding::Held, false) if classified.verdict == ScanVerdict::Clean => {
            StoredRescan::CleanWhileHeld
        }
        (ObjectStanding::Held, false) => StoredRescan::StillHeld { signature: None },
        (_, true) if overrides(released, classified) => StoredRescan::Stays {
            verdict: ScanVerdict::Released,
        },
        (_, true) => StoredRescan::Hold { signature: finding },
        (_, false) => StoredRescan::Stays {
            // A release stands until another finding; a clean re-scan keeps it.
            verdict: if current == ScanVerdict::Released {
                ScanVerdict::Released
            } else {
                classified.verdict
            },
        },
    }
}

/// Whether a re-scan classified as `classified` quarantines a ready upload whose
/// release (if any) overrode `released`: only for malware, and not for the finding
/// an operator overrode.
pub fn rescan_quarantines_ready(released: Option<&str>, classified: &Classified) -> bool {
    classified.verdict == ScanVerdict::Infected && !overrides(released, classified)
}

/// What a stored object whose bytes could not be read is recorded as: as it was,
/// and a held one still held for the finding that held it.
pub fn rescan_unread(standing: ObjectStanding, current: ScanVerdict) -> StoredRescan {
    match standing {
        ObjectStanding::Held => StoredRescan::StillHeld { signature: None },
        ObjectStanding::Stored | ObjectStanding::Quarantined => {
            StoredRescan::Stays { verdict: current }
        }
    }
}

/// Whether an operator's release of `released` overrides `classified`'s finding.
fn overrides(released: Option<&str>, classified: &Classified) -> bool {
    released.is_some_and(|r| classified.finding.as_deref() == Some(r))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn found(name: &str) -> Classified {
        crate::classify(&crate::ScannerAnswer::Found(name.into()), false)
    }

    fn clean() -> Classified {
        crate::classify(&crate::ScannerAnswer::Nothing, false)
    }

    #[test]
    fn a_later_finding_holds_stored_content_unless_an_operator_overrode_that_finding() {
        use ObjectStanding::{Held, Stored};
        use ScanVerdict::{Clean, Released};
        let fp = "Win.Trojan.FalseAlarm-1";
        let other = "Win.Trojan.Real-2";
        let limit = "Heuristics.Limits.Exceeded.MaxScanSize";
        let table: &[(
            ObjectStanding,
            ScanVerdict,
            Option<&str>,
            Classified,
            StoredRescan,
        )] = &[
            (
                Stored,
                Clean,
                None,
                clean(),
                StoredRescan::Stays { verdict: Clean },
            ),
            (
                Stored,
                Clean,
                None,
                found(fp),
                StoredRescan::Hold {
                    signature: fp.into(),
                },
            ),
            (
                Stored,
                Released,
                Some(fp),
                found(fp),
                StoredRescan::Stays { verdict: Released },
            ),
            (
                Stored,
                Released,
                Some(fp),
                found(other),
                StoredRescan::Hold {
                    signature: other.into(),
                },
            ),
            (
                Stored,
                Released,
                Some(fp),
                clean(),
                StoredRescan::Stays { verdict: Released },
            ),
            (
                Stored,
                Clean,
                None,
                found(limit),
                StoredRescan::Stays {
                    verdict: ScanVerdict::Unscannable,
                },
            ),
            (
                Held,
                ScanVerdict::Infected,
                None,
                found(fp),
                StoredRescan::StillHeld {
                    signature: Some(fp.into()),
                },
            ),
            (
                Held,
                ScanVerdict::Infected,
                None,
                found(other),
                StoredRescan::StillHeld {
                    signature: Some(other.into()),
                },
            ),
            (
                Held,
                ScanVerdict::Infected,
                None,
                clean(),
                StoredRescan::CleanWhileHeld,
            ),
            (
                Held,
                ScanVerdict::Infected,
                None,
                found(limit),
                StoredRescan::StillHeld { signature: None },
            ),
        ];
        for (standing, current, released, classified, expected) in table {
            assert_eq!(
                &rescan_stored(*standing, *current, *released, classified),
                expected,
                "{standing} {current} {released:?} {classified:?}"
            );
        }
    }

    #[test]
    fn a_ready_upload_is_quarantined_again_only_for_a_finding_not_overridden() {
        let fp = "Win.Trojan.FalseAlarm-1";
        assert!(rescan_quarantines_ready(None, &found(fp)));
        assert!(!rescan_quarantines_ready(Some(fp), &found(fp)));
        assert!(rescan_quarantines_ready(Some(fp), &found("Other.Malware")));
        assert!(!rescan_quarantines_ready(None, &clean()));
        assert_eq!(
            rescan_unread(ObjectStanding::Held, ScanVerdict::Infected),
            StoredRescan::StillHeld { signature: None }
        );
        assert_eq!(
            rescan_unread(ObjectStanding::Stored, ScanVerdict::Released),
            StoredRescan::Stays {
                verdict: ScanVerdict::Released
            }
        );
        assert!(ObjectStanding::Stored.downloadable());
        assert!(!ObjectStanding::Held.downloadable());
        assert!(!ObjectStanding::Quarantined.downloadable());
    }
}
