//! The malware scan: its verdict on a file, why a file could not be inspected, how
//! the scanner's answer is classified (the one place that reads signature names),
//! and which scanner and signatures made a verdict.

use crate::words::vocabulary;

vocabulary! {
    /// What the scanner concluded, or an operator over it. Only
    /// [`ScanVerdict::Clean`] and [`ScanVerdict::Released`] let a file go on;
    /// reading any other word fails, so a verdict this code does not know is never
    /// taken for clean.
    pub enum ScanVerdict as "scan verdict" {
        /// The scanner read the whole file and found nothing (or, where an operator
        /// allows encrypted archives, everything it could read).
        Clean = "clean",
        /// A signature matched.
        Infected = "infected",
        /// The scanner could not inspect the whole file: encrypted, nested or
        /// packed beyond its limits, or in a form it cannot open.
        Unscannable = "unscannable",
        /// An operator judged the file safe over a finding of the scanner (the
        /// verdict names who, why, and the finding overridden).
        Released = "released",
    }
}

impl ScanVerdict {
    /// True for the verdicts that let a file go on: clean, or released by an
    /// operator.
    pub const fn lets_through(self) -> bool {
        matches!(self, Self::Clean | Self::Released)
    }
}

vocabulary! {
    /// Why the scanner could not vouch for everything inside a file.
    pub enum Uninspected as "uninspected reason" {
        /// A password-protected archive (zip, rar, 7z).
        EncryptedArchive = "encrypted_archive",
        /// An encrypted document (PDF, Office) or any other encrypted content.
        EncryptedDocument = "encrypted_document",
        /// Larger than the scanner reads, once unpacked (a decompression bomb).
        TooLarge = "too_large",
        /// Archives nested deeper than the scanner follows.
        TooDeep = "too_deep",
        /// More files inside than the scanner opens.
        TooManyFiles = "too_many_files",
        /// Scanning took longer than the scanner allows.
        TooSlow = "too_slow",
        /// A container the scanner cannot open (ZIP64 entries, for example).
        UnreadableFormat = "unreadable_format",
        /// Damaged in a way the scanner cannot analyse.
        Damaged = "damaged",
    }
}

impl Uninspected {
    /// What the seller reads, with what to do about it.
    pub const fn sentence(self) -> &'static str {
        match self {
            Self::EncryptedArchive => {
                "the archive is password-protected, so it could not be checked for malware: upload it without a password"
            }
            Self::EncryptedDocument => {
                "the document is encrypted, so it could not be checked for malware: upload it without a password or encryption"
            }
            Self::TooLarge => {
                "the file unpacks to more than the malware scanner can check (a compressed archive that expands too far): upload its contents in several smaller archives"
            }
            Self::TooDeep => {
                "the file holds archives nested too deeply for the malware scanner to follow: unpack the inner archives and upload them in one flat archive"
            }
            Self::TooManyFiles => {
                "the archive holds more files than the malware scanner can check: split it into several archives"
            }
            Self::TooSlow => {
                "checking the file for malware took longer than allowed: split it into smaller files"
            }
            Self::UnreadableFormat => {
                "the archive uses a format the malware scanner cannot look inside (ZIP64 entries): create it again as a standard zip"
            }
            Self::Damaged => {
                "the file is damaged in a way the malware scanner cannot analyse: upload an intact copy"
            }
        }
    }

    /// True for the reasons an operator may choose to accept
    /// (`UPLOAD_ALLOW_ENCRYPTED_ARCHIVES`).
    pub const fn is_encrypted_archive(self) -> bool {
        matches!(self, Self::EncryptedArchive)
    }
}

vocabulary! {
    /// Where a re-scan of the catalogue for one signature version is.
    pub enum RescanState as "re-scan state" {
        /// Objects remain to re-scan.
        Running = "running",
        /// Everything was re-scanned (or a newer run took over).
        Finished = "finished",
    }
}

/// What clamd answered about a stream, before classification.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ScannerAnswer {
    /// `OK`.
    Nothing,
    /// `<name> FOUND`.
    Found(String),
    /// The stream was longer than clamd accepts (`INSTREAM size limit exceeded`).
    StreamTooLong,
}

/// The verdict an answer means, with what the record carries beside it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Classified {
    /// The verdict.
    pub verdict: ScanVerdict,
    /// The name clamd gave, when it gave one.
    pub finding: Option<String>,
    /// Why the file (or part of it) was not inspected: the reason for an
    /// unscannable verdict, or what a clean verdict did not look inside.
    pub uninspected: Option<Uninspected>,
}

/// The prefix of every name clamd gives that is a limit or an inability, not
/// malware. clamd appends `.UNOFFICIAL` to names from unsigned databases.
const HEURISTICS: &str = "Heuristics.";
/// The names of the project's own signatures for containers clamd skips in silence
/// (`deploy/clamav/upload-unscannable.ndb`).
const OWN_UNSCANNABLE: &str = "Upload.Unscannable.";
/// The encrypted containers that are archives (an operator may accept these);
/// every other `Heuristics.Encrypted.*` name counts as an encrypted document.
const ENCRYPTED_ARCHIVES: [&str; 6] = ["Zip", "RAR", "7Zip", "ARJ", "CAB", "EGG"];

/// Why `name` (a name clamd reported) means the file was not inspected, or `None`
/// when it names malware. Fails closed: a heuristic this code does not know is an
/// inability, never clean, and never an encrypted archive an operator allowed.
pub fn uninspected_by(name: &str) -> Option<Uninspected> {
    let name = name.strip_suffix(".UNOFFICIAL").unwrap_or(name);
    if let Some(own) = name.strip_prefix(OWN_UNSCANNABLE) {
        return Some(if own.starts_with("Oversized") {
            Uninspected::TooLarge
        } else {
            Uninspected::UnreadableFormat
        });
    }
    let rest = name.strip_prefix(HEURISTICS)?;
    Some(if let Some(kind) = rest.strip_prefix("Encrypted.") {
        if ENCRYPTED_ARCHIVES.contains(&kind) {
            Uninspected::EncryptedArchive
        } else {
            Uninspected::EncryptedDocument
        }
    } else if let Some(limit) = rest.strip_prefix("Limits.Exceeded.") {
        match limit {
            "MaxRecursion" => Uninspected::TooDeep,
            "MaxFiles" => Uninspected::TooManyFiles,
            "MaxScanTime" => Uninspected::TooSlow,
            _ => Uninspected::TooLarge,
        }
    } else if rest.starts_with("Broken.") {
        Uninspected::Damaged
    } else {
        // Other heuristics (phishing, macros, structure) report something found.
        return None;
    })
}

/// The one classification of a scanner's answer. `allow_encrypted_archives` is
/// the operator's choice to accept password-protected archives: such a file is
/// clean as far as it could be read, and the verdict says what was not inspected.
pub fn classify(answer: &ScannerAnswer, allow_encrypted_archives: bool) -> Classified {
    match answer {
        ScannerAnswer::Nothing => Classified {
            verdict: ScanVerdict::Clean,
            finding: None,
            uninspected: None,
        },
        ScannerAnswer::StreamTooLong => Classified {
            verdict: ScanVerdict::Unscannable,
            finding: None,
            uninspected: Some(Uninspected::TooLarge),
        },
        ScannerAnswer::Found(name) => {
            let finding = Some(name.clone());
            match uninspected_by(name) {
                None => Classified {
                    verdict: ScanVerdict::Infected,
                    finding,
                    uninspected: None,
                },
                Some(reason) if reason.is_encrypted_archive() && allow_encrypted_archives => {
                    Classified {
                        verdict: ScanVerdict::Clean,
                        finding,
                        uninspected: Some(reason),
                    }
                }
                Some(reason) => Classified {
                    verdict: ScanVerdict::Unscannable,
                    finding,
                    uninspected: Some(reason),
                },
            }
        }
    }
}

impl Classified {
    /// The verdict once the scan's own walk of an archive is heard: a file clamd
    /// called clean that crossed a limit there (`crossed`) cannot be vouched for.
    /// clamd's own findings (malware, or a reason it could not look) stand.
    pub fn bounded_by(self, crossed: Option<Uninspected>) -> Self {
        match crossed {
            Some(reason) if self.verdict == ScanVerdict::Clean => Self {
                verdict: ScanVerdict::Unscannable,
                finding: Some(format!("{ARCHIVE_WALK}{}", reason.as_str())),
                uninspected: Some(reason),
            },
            _ => self,
        }
    }
}

/// The name a limit crossed by the scan's archive walk is recorded under.
const ARCHIVE_WALK: &str = "Upload.ArchiveWalk.";

/// The scanner and signatures a verdict was made with, from clamd's `VERSION`
/// answer (`ClamAV 1.4.6/27470/Sat Nov 28 08:23:12 2026`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScannerVersion {
    /// The engine (`ClamAV 1.4.6`).
    pub engine: String,
    /// The signature database's version (the daily database's number; 0 when
    /// clamd loaded no versioned database).
    pub signatures: i64,
}

impl ScannerVersion {
    /// Reads clamd's `VERSION` answer; anything that is not one fails.
    pub fn parse(answer: &str) -> Result<Self, crate::UnknownWord> {
        let answer = answer.trim_end_matches(['\0', '\n', ' ']);
        let refuse = || crate::UnknownWord::new("clamd version", answer);
        let mut fields = answer.splitn(3, '/');
        let engine = fields
            .next()
            .filter(|e| e.starts_with("ClamAV "))
            .ok_or_else(refuse)?;
        let signatures = match fields.next() {
            None => 0,
            Some(number) => number.parse::<i64>().map_err(|_| refuse())?,
        };
        Ok(Self {
            engine: engine.to_owned(),
            signatures,
        })
    }
}

impl std::fmt::Display for ScannerVersion {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} signatures {}", self.engine, self.signatures)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn found(name: &str, allow: bool) -> Classified {
        classify(&ScannerAnswer::Found(name.into()), allow)
    }

    #[test]
    fn malware_names_are_infected_and_limits_are_unscannable() {
        assert_eq!(
            found("Win.Test.EICAR_HDB-1", false).verdict,
            ScanVerdict::Infected
        );
        assert_eq!(
            found("Upload.Test.EICAR-Body.UNOFFICIAL", false).verdict,
            ScanVerdict::Infected
        );
        for (name, reason) in [
            (
                "Heuristics.Limits.Exceeded.MaxScanSize",
                Uninspected::TooLarge,
            ),
            (
                "Heuristics.Limits.Exceeded.MaxFileSize",
                Uninspected::TooLarge,
            ),
            (
                "Heuristics.Limits.Exceeded.MaxRecursion",
                Uninspected::TooDeep,
            ),
            (
                "Heuristics.Limits.Exceeded.MaxFiles",
                Uninspected::TooManyFiles,
            ),
            (
                "Heuristics.Limits.Exceeded.MaxScanTime",
                Uninspected::TooSlow,
            ),
            (
                "Heuristics.Limits.Exceeded.SomethingNew",
                Uninspected::TooLarge,
            ),
            ("Heuristics.Encrypted.Zip", Uninspected::EncryptedArchive),
            ("Heuristics.Encrypted.PDF", Uninspected::EncryptedDocument),
            (
                "Heuristics.Encrypted.Unheard",
                Uninspected::EncryptedDocument,
            ),
            ("Heuristics.Broken.Executable", Uninspected::Damaged),
            (
                "Upload.Unscannable.Zip64-LocalSize.UNOFFICIAL",
                Uninspected::UnreadableFormat,
            ),
            (
                "Upload.Unscannable.Oversized-CentralEntry.UNOFFICIAL",
                Uninspected::TooLarge,
            ),
        ] {
            let c = found(name, false);
            assert_eq!(c.verdict, ScanVerdict::Unscannable, "{name}");
            assert_eq!(c.uninspected, Some(reason), "{name}");
            assert_eq!(c.finding.as_deref(), Some(name));
        }
        assert_eq!(
            classify(&ScannerAnswer::StreamTooLong, true).verdict,
            ScanVerdict::Unscannable
        );
        assert_eq!(
            classify(&ScannerAnswer::Nothing, false),
            Classified {
                verdict: ScanVerdict::Clean,
                finding: None,
                uninspected: None
            }
        );
    }

    #[test]
    fn only_encrypted_archives_can_be_allowed_and_the_verdict_says_so() {
        let zip = found("Heuristics.Encrypted.Zip", true);
        assert_eq!(zip.verdict, ScanVerdict::Clean);
        assert_eq!(zip.uninspected, Some(Uninspected::EncryptedArchive));
        for name in [
            "Heuristics.Encrypted.PDF",
            "Heuristics.Encrypted.Unheard",
            "Heuristics.Limits.Exceeded.MaxRecursion",
        ] {
            assert_eq!(
                found(name, true).verdict,
                ScanVerdict::Unscannable,
                "{name}"
            );
        }
    }

    #[test]
    fn a_limit_the_archive_walk_crossed_makes_a_clean_file_unscannable_but_never_hides_malware() {
        let bomb = classify(&ScannerAnswer::Nothing, false).bounded_by(Some(Uninspected::TooLarge));
        assert_eq!(bomb.verdict, ScanVerdict::Unscannable);
        assert_eq!(bomb.uninspected, Some(Uninspected::TooLarge));
        assert_eq!(
            bomb.finding.as_deref(),
            Some("Upload.ArchiveWalk.too_large")
        );
        let malware = found("Win.Test.EICAR_HDB-1", false).bounded_by(Some(Uninspected::TooDeep));
        assert_eq!(malware.verdict, ScanVerdict::Infected);
        let zip64 = found("Upload.Unscannable.Zip64-LocalSize.UNOFFICIAL", false)
            .bounded_by(Some(Uninspected::TooLarge));
        assert_eq!(
            zip64.uninspected,
            Some(Uninspected::UnreadableFormat),
            "clamd's reason stands"
        );
        let clean = classify(&ScannerAnswer::Nothing, false).bounded_by(None);
        assert_eq!(clean.verdict, ScanVerdict::Clean);
    }

    #[test]
    fn scanner_versions_are_read_strictly() {
        assert_eq!(
            ScannerVersion::parse("ClamAV 1.4.6/27470/Sat Nov 28 08:23:12 2026\0"),
            Ok(ScannerVersion {
                engine: "ClamAV 1.4.6".into(),
                signatures: 27470
            })
        );
        assert_eq!(
            ScannerVersion::parse("ClamAV 1.4.6").map(|v| v.signatures),
            Ok(0)
        );
        assert!(ScannerVersion::parse("ClamAV 1.4.6/seven/x").is_err());
        assert!(ScannerVersion::parse("UNKNOWN COMMAND").is_err());
    }
}
