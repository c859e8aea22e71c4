//! Digests of a file's content: the MD5 that names a stored file (and that S3
//! checks on every part) and the SHA-256 that tells two contents apart when their
//! MD5s collide.

use std::fmt;
use std::str::FromStr;

use crate::DomainError;

fn to_hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push(char::from(DIGITS[usize::from(b >> 4)]));
        out.push(char::from(DIGITS[usize::from(b & 0xf)]));
    }
    out
}

fn from_hex<const N: usize>(s: &str) -> Option<[u8; N]> {
    let digit = |c: u8| match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    };
    let bytes = s.as_bytes();
    if bytes.len() != N * 2 {
        return None;
    }
    let mut out = [0u8; N];
    for (i, pair) in bytes.chunks_exact(2).enumerate() {
        out[i] = digit(pair[0])? << 4 | digit(pair[1])?;
    }
    Some(out)
}

/// A raw 16-byte MD5 digest. Shown and stored as lower-case hex (as S3 writes the
/// ETag of a single part); a part's signed MD5 is stored raw.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[cfg_attr(
    feature = "diesel",
    derive(diesel::expression::AsExpression, diesel::deserialize::FromSqlRow)
)]
#[cfg_attr(feature = "diesel", diesel(sql_type = diesel::sql_types::Text))]
#[cfg_attr(feature = "diesel", diesel(sql_type = diesel::sql_types::Binary))]
pub struct Md5Digest([u8; 16]);

impl Md5Digest {
    /// Wraps raw digest bytes.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, DomainError> {
        <[u8; 16]>::try_from(bytes)
            .map(Self)
            .map_err(|_| DomainError::InvalidMd5(bytes.len()))
    }

    /// The raw bytes.
    pub fn as_bytes(&self) -> &[u8; 16] {
        &self.0
    }

    /// Lower-case hex.
    pub fn to_hex(&self) -> String {
        to_hex(&self.0)
    }
}

impl FromStr for Md5Digest {
    type Err = DomainError;

    /// 32 hex digits, either case.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        from_hex(s)
            .map(Self)
            .ok_or_else(|| DomainError::InvalidDigestHex("MD5", s.chars().take(80).collect()))
    }
}

impl fmt::Display for Md5Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

/// A raw 32-byte SHA-256 digest, shown and stored as lower-case hex.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[cfg_attr(
    feature = "diesel",
    derive(diesel::expression::AsExpression, diesel::deserialize::FromSqlRow)
)]
#[cfg_attr(feature = "diesel", diesel(sql_type = diesel::sql_types::Text))]
#[cfg_attr(feature = "diesel", diesel(sql_type = diesel::sql_types::Binary))]
pub struct Sha256Digest([u8; 32]);

impl Sha256Digest {
    /// Wraps raw digest bytes.
    pub fn from_array(bytes: [u8; 32]) -> Self {
        Self(bytes)
    }

    /// Wraps raw digest bytes of any slice (a part's signed SHA-256).
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, DomainError> {
        <[u8; 32]>::try_from(bytes)
            .map(Self)
            .map_err(|_| DomainError::InvalidSha256(bytes.len()))
    }

    /// The raw bytes.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// Lower-case hex.
    pub fn to_hex(&self) -> String {
        to_hex(&self.0)
    }
}

impl FromStr for Sha256Digest {
    type Err = DomainError;

    /// 64 hex digits, either case.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        from_hex(s)
            .map(Self)
            .ok_or_else(|| DomainError::InvalidDigestHex("SHA-256", s.chars().take(80).collect()))
    }
}

impl fmt::Display for Sha256Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

/// What identifies a file's content: its MD5 (the regular bucket's key) and its
/// SHA-256 (which tells two contents with one MD5 apart). Made together by one
/// read of the file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ContentHash {
    /// Names the stored object.
    pub md5: Md5Digest,
    /// Proves what the object holds.
    pub sha256: Sha256Digest,
}

#[cfg(feature = "diesel")]
mod sql {
    use diesel::deserialize::{self, FromSql};
    use diesel::pg::{Pg, PgValue};
    use diesel::serialize::{self, Output, ToSql};
    use diesel::sql_types::{Binary, Text};
    use std::io::Write;

    use super::{Md5Digest, Sha256Digest};

    /// A digest's two columns: text as lower-case hex, binary as its raw bytes;
    /// reading checks the form and the length.
    macro_rules! digest_columns {
        ($($digest:ident),+) => {$(
            impl ToSql<Text, Pg> for $digest {
                fn to_sql<'b>(&'b self, out: &mut Output<'b, '_, Pg>) -> serialize::Result {
                    out.write_all(self.to_hex().as_bytes())?;
                    Ok(serialize::IsNull::No)
                }
            }

            impl FromSql<Text, Pg> for $digest {
                fn from_sql(bytes: PgValue<'_>) -> deserialize::Result<Self> {
                    Ok(<String as FromSql<Text, Pg>>::from_sql(bytes)?.parse()?)
                }
            }

            impl ToSql<Binary, Pg> for $digest {
                fn to_sql<'b>(&'b self, out: &mut Output<'b, '_, Pg>) -> serialize::Result {
                    out.write_all(&self.0)?;
                    Ok(serialize::IsNull::No)
                }
            }

            impl FromSql<Binary, Pg> for $digest {
                fn from_sql(bytes: PgValue<'_>) -> deserialize::Result<Self> {
                    Ok($digest::from_bytes(bytes.as_bytes())?)
                }
            }
        )+};
    }

    digest_columns!(Md5Digest, Sha256Digest);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn md5_needs_sixteen_bytes_and_formats_as_hex() {
        assert_eq!(
            Md5Digest::from_bytes(&[1; 15]),
            Err(DomainError::InvalidMd5(15))
        );
        let d = Md5Digest::from_bytes(&[0xab; 16]).unwrap();
        assert_eq!(d.to_hex(), "ab".repeat(16));
        assert_eq!(d.to_string().parse::<Md5Digest>().unwrap(), d);
        assert_eq!("AB".repeat(16).parse::<Md5Digest>().unwrap(), d);
    }

    #[test]
    fn hex_digests_refuse_wrong_lengths_and_digits() {
        assert!("ab".repeat(15).parse::<Md5Digest>().is_err());
        assert!(
            format!("{}zz", "ab".repeat(15))
                .parse::<Md5Digest>()
                .is_err()
        );
        assert!("ab".repeat(16).parse::<Sha256Digest>().is_err());
        let sha: Sha256Digest = "0f".repeat(32).parse().unwrap();
        assert_eq!(sha.to_hex(), "0f".repeat(32));
    }
}
