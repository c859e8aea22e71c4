use std::fmt;
use std::str::FromStr;

use uuid::Uuid;

use crate::DomainError;

/// An upload's id: a UUID v7, so ids sort by creation time and never collide.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
#[serde(transparent)]
pub struct UploadId(Uuid);

impl UploadId {
    /// A fresh id.
    pub fn new() -> Self {
        Self(Uuid::now_v7())
    }

    /// The id as a UUID.
    pub fn as_uuid(&self) -> Uuid {
        self.0
    }
}

impl Default for UploadId {
    fn default() -> Self {
        Self::new()
    }
}

impl From<Uuid> for UploadId {
    fn from(value: Uuid) -> Self {
        Self(value)
    }
}

impl FromStr for UploadId {
    type Err = DomainError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Uuid::parse_str(s.trim())
            .map(Self)
            .map_err(|_| DomainError::InvalidUploadId(s.chars().take(64).collect()))
    }
}

impl fmt::Display for UploadId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_unique_and_round_trip() {
        let a = UploadId::new();
        let b = UploadId::new();
        assert_ne!(a, b);
        assert_eq!(a.to_string().parse::<UploadId>().unwrap(), a);
    }

    #[test]
    fn garbage_is_refused() {
        assert!(matches!(
            "not-an-id".parse::<UploadId>(),
            Err(DomainError::InvalidUploadId(_))
        ));
    }
}
