//! How a part's body is pinned in its signed URL: by its MD5 (`Content-MD5`, which
//! every S3 store checks) or by its SHA-256 (`x-amz-checksum-sha256`, for which the
//! store's multipart upload is created; Web Crypto has SHA-256 and no MD5, so a
//! browser pins parts at native speed this way). Either way the store refuses a
//! body that differs, and the content MD5 that names a stored file is the scan's.

use crate::words::vocabulary;
use crate::{DomainError, Md5Digest, Sha256Digest};

vocabulary! {
    /// The checksum every part of an upload is signed with, fixed at creation.
    pub enum PartChecksum as "part checksum" {
        /// `Content-MD5` (the default).
        Md5 = "md5",
        /// `x-amz-checksum-sha256`; the multipart upload is created for SHA-256.
        Sha256 = "sha256",
    }
}

/// What one part was signed with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PartPin {
    /// The part's MD5.
    Md5(Md5Digest),
    /// The part's SHA-256.
    Sha256(Sha256Digest),
}

impl PartPin {
    /// The checksum this pin is.
    pub fn checksum(&self) -> PartChecksum {
        match self {
            Self::Md5(_) => PartChecksum::Md5,
            Self::Sha256(_) => PartChecksum::Sha256,
        }
    }

    /// A part's pin from a signing request's raw digests, for an upload whose parts
    /// are signed with `checksum`: exactly that digest, and not the other one (a
    /// digest the store would not check is refused rather than ignored).
    pub fn from_request(
        checksum: PartChecksum,
        content_md5: &[u8],
        checksum_sha256: &[u8],
    ) -> Result<Self, DomainError> {
        match checksum {
            PartChecksum::Md5 if checksum_sha256.is_empty() => {
                Md5Digest::from_bytes(content_md5).map(Self::Md5)
            }
            PartChecksum::Sha256 if content_md5.is_empty() => {
                Sha256Digest::from_bytes(checksum_sha256).map(Self::Sha256)
            }
            expected => Err(DomainError::WrongPartChecksum(expected)),
        }
    }

    /// The pin of a stored row: its MD5 or its SHA-256, exactly one of them.
    pub fn from_columns(
        content_md5: Option<Md5Digest>,
        checksum_sha256: Option<Sha256Digest>,
    ) -> Option<Self> {
        match (content_md5, checksum_sha256) {
            (Some(md5), None) => Some(Self::Md5(md5)),
            (None, Some(sha256)) => Some(Self::Sha256(sha256)),
            _ => None,
        }
    }

    /// The MD5, if this pin is one.
    pub fn md5(&self) -> Option<Md5Digest> {
        match self {
            Self::Md5(d) => Some(*d),
            Self::Sha256(_) => None,
        }
    }

    /// The SHA-256, if this pin is one.
    pub fn sha256(&self) -> Option<Sha256Digest> {
        match self {
            Self::Sha256(d) => Some(*d),
            Self::Md5(_) => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The upload's checksum, the MD5 and SHA-256 given, and what the pin is.
    type Case<'a> = (
        PartChecksum,
        &'a [u8],
        &'a [u8],
        Result<PartChecksum, DomainError>,
    );

    #[test]
    fn a_part_is_pinned_by_the_upload_s_checksum_and_by_it_alone() {
        let md5 = [1u8; 16];
        let sha = [2u8; 32];
        let cases: &[Case<'_>] = &[
            (PartChecksum::Md5, &md5, &[], Ok(PartChecksum::Md5)),
            (PartChecksum::Sha256, &[], &sha, Ok(PartChecksum::Sha256)),
            // The other digest, or both: refused, naming the one to give.
            (
                PartChecksum::Md5,
                &[],
                &sha,
                Err(DomainError::WrongPartChecksum(PartChecksum::Md5)),
            ),
            (
                PartChecksum::Sha256,
                &md5,
                &[],
                Err(DomainError::WrongPartChecksum(PartChecksum::Sha256)),
            ),
            (
                PartChecksum::Sha256,
                &md5,
                &sha,
                Err(DomainError::WrongPartChecksum(PartChecksum::Sha256)),
            ),
            // Wrong lengths.
            (
                PartChecksum::Md5,
                &sha,
                &[],
                Err(DomainError::InvalidMd5(32)),
            ),
            (
                PartChecksum::Sha256,
                &[],
                &md5,
                Err(DomainError::InvalidSha256(16)),
            ),
            (PartChecksum::Md5, &[], &[], Err(DomainError::InvalidMd5(0))),
        ];
        for (checksum, md5, sha, expected) in cases {
            let got = PartPin::from_request(*checksum, md5, sha).map(|p| p.checksum());
            assert_eq!(
                &got,
                expected,
                "{checksum} md5 {} sha {}",
                md5.len(),
                sha.len()
            );
        }
    }

    #[test]
    fn a_row_holds_exactly_one_pin() {
        let md5 = Md5Digest::from_bytes(&[1; 16]).unwrap();
        let sha = Sha256Digest::from_bytes(&[2; 32]).unwrap();
        assert_eq!(
            PartPin::from_columns(Some(md5), None),
            Some(PartPin::Md5(md5))
        );
        assert_eq!(
            PartPin::from_columns(None, Some(sha)),
            Some(PartPin::Sha256(sha))
        );
        assert_eq!(PartPin::from_columns(Some(md5), Some(sha)), None);
        assert_eq!(PartPin::from_columns(None, None), None);
    }
}
