//! When a stored version of an item's file may be downloaded: never while its
//! content is in quarantine (held for review or confirmed), and never unless its
//! upload was stored after a scan that let it through, whatever else a caller
//! believes about it.

use crate::{ScanVerdict, UploadState};

/// What is known of a version when its download link is asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VersionStanding<'a> {
    /// The finding its content is quarantined for, and whether an operator holds
    /// it for review (`None`: not in quarantine).
    pub quarantine: Option<(&'a str, bool)>,
    /// The state of the upload it was stored from (`None`: no such upload).
    pub upload: Option<UploadState>,
    /// That upload's scan verdict (`None`: never scanned).
    pub verdict: Option<ScanVerdict>,
}

/// Why a version's download link is refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DownloadRefusal {
    /// Its content is in quarantine: the finding's signature, and whether it is
    /// held for an operator's review.
    Quarantined {
        /// The malware found.
        signature: String,
        /// Held for review (true), or confirmed.
        held: bool,
    },
    /// Its upload is not stored, or its scan did not let it through: a state no
    /// version should be in, refused all the same.
    NotStoredClean {
        /// Whether the upload is stored.
        stored: bool,
        /// Whether its scan let it through.
        clean: bool,
    },
}

impl VersionStanding<'_> {
    /// Whether a link may be handed out for the version.
    pub fn may_download(&self) -> Result<(), DownloadRefusal> {
        if let Some((signature, held)) = self.quarantine {
            return Err(DownloadRefusal::Quarantined {
                signature: signature.to_owned(),
                held,
            });
        }
        let stored = self.upload == Some(UploadState::Stored);
        let clean = self.verdict.is_some_and(ScanVerdict::lets_through);
        if stored && clean {
            Ok(())
        } else {
            Err(DownloadRefusal::NotStoredClean { stored, clean })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_stored_clean_version_out_of_quarantine_is_downloadable() {
        let clean = Some(ScanVerdict::Clean);
        let stored = Some(UploadState::Stored);
        let quarantined = |held| DownloadRefusal::Quarantined {
            signature: "Eicar".into(),
            held,
        };
        let not = |stored, clean| DownloadRefusal::NotStoredClean { stored, clean };
        let cases = [
            ((None, stored, clean), Ok(())),
            // A released false alarm lets the file through too.
            ((None, stored, Some(ScanVerdict::Released)), Ok(())),
            (
                (Some(("Eicar", true)), stored, clean),
                Err(quarantined(true)),
            ),
            (
                (Some(("Eicar", false)), stored, clean),
                Err(quarantined(false)),
            ),
            (
                (None, Some(UploadState::Ready), clean),
                Err(not(false, true)),
            ),
            (
                (None, stored, Some(ScanVerdict::Infected)),
                Err(not(true, false)),
            ),
            (
                (None, stored, Some(ScanVerdict::Unscannable)),
                Err(not(true, false)),
            ),
            ((None, stored, None), Err(not(true, false))),
            ((None, None, None), Err(not(false, false))),
        ];
        for ((quarantine, upload, verdict), expected) in cases {
            let standing = VersionStanding {
                quarantine,
                upload,
                verdict,
            };
            assert_eq!(standing.may_download(), expected, "{standing:?}");
        }
    }
}
