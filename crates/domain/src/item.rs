//! Items: what a seller sells, the submissions that save them, and the rules a
//! submission's fields must meet.

use std::str::FromStr;

use crate::DomainError;
use crate::text::is_invisible_format;
use crate::words::vocabulary;

vocabulary! {
    /// What an item is, which decides which files it may hold.
    pub enum ItemKind as "item kind" {
        /// Any downloadable files (fonts, templates, archives, ...).
        DigitalFile = "digital_file",
        /// One video file.
        Video = "video",
    }
}

impl ItemKind {
    /// How many files an item of this kind holds at most.
    pub fn max_files(self) -> usize {
        match self {
            Self::DigitalFile => MAX_ITEM_FILES,
            Self::Video => 1,
        }
    }
}

/// Files a digital-file item may hold.
pub const MAX_ITEM_FILES: usize = 20;
/// The longest title, in characters.
pub const MAX_TITLE_CHARS: usize = 200;
/// The longest description, in characters.
pub const MAX_DESCRIPTION_CHARS: usize = 20_000;
/// The longest idempotency key, in bytes.
pub const MAX_IDEMPOTENCY_KEY_LEN: usize = 128;

/// An item's text fields, checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ItemFields {
    title: String,
    description: String,
}

impl ItemFields {
    /// Checks the fields as a seller typed them (surrounding spaces trimmed).
    pub fn parse(title: &str, description: &str) -> Result<Self, DomainError> {
        let title = title.trim();
        let description = description.trim();
        if title.is_empty() {
            return Err(DomainError::InvalidItemField("title is required"));
        }
        if title.chars().count() > MAX_TITLE_CHARS {
            return Err(DomainError::InvalidItemField(
                "title is longer than 200 characters",
            ));
        }
        if title.chars().any(char::is_control) {
            return Err(DomainError::InvalidItemField(
                "title must be one line without control characters",
            ));
        }
        if title.chars().any(is_invisible_format) {
            return Err(DomainError::InvalidItemField(
                "title must not contain invisible formatting characters (such as right-to-left overrides)",
            ));
        }
        if description.chars().count() > MAX_DESCRIPTION_CHARS {
            return Err(DomainError::InvalidItemField(
                "description is longer than 20000 characters",
            ));
        }
        if description
            .chars()
            .any(|c| (c.is_control() && c != '\n' && c != '\t') || is_invisible_format(c))
        {
            return Err(DomainError::InvalidItemField(
                "description may hold line breaks and tabs, but no other control or invisible formatting characters",
            ));
        }
        Ok(Self {
            title: title.to_owned(),
            description: description.to_owned(),
        })
    }

    /// The title.
    pub fn title(&self) -> &str {
        &self.title
    }

    /// The description.
    pub fn description(&self) -> &str {
        &self.description
    }
}

/// The key a client sends so that a retried submission is recognised as the same.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdempotencyKey(String);

impl FromStr for IdempotencyKey {
    type Err = DomainError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let ok = !s.is_empty()
            && s.len() <= MAX_IDEMPOTENCY_KEY_LEN
            && s.bytes().all(|b| b.is_ascii_graphic());
        if ok {
            Ok(Self(s.to_owned()))
        } else {
            Err(DomainError::InvalidIdempotencyKey)
        }
    }
}

impl IdempotencyKey {
    /// The key as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

vocabulary! {
    /// Where a submission is. Changes only through [`SubmissionState::apply`].
    pub enum SubmissionState as "submission state" {
        /// Accepted; the persist job is queued.
        Queued = "queued",
        /// The item's fields are saved; the move job is queued.
        Persisted = "persisted",
        /// Every file is stored as a new version.
        Stored = "stored",
        /// The background work gave up; see the failure.
        Failed = "failed",
    }
}

/// Something that happens to a submission.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SubmissionEvent {
    /// The persist job saved the fields.
    Persisted,
    /// The move job stored every file.
    Stored,
    /// A job ran out of attempts or aborted.
    Failed,
    /// An operator retried it: it is saved again (a no-op for fields already
    /// saved) and its files moved.
    Retried,
}

/// A submission event that cannot happen in the current state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("a submission that is {from} cannot be {event:?}")]
pub struct SubmissionTransitionError {
    /// The state it was in.
    pub from: SubmissionState,
    /// The event refused.
    pub event: SubmissionEvent,
}

impl SubmissionState {
    /// The one transition function.
    pub fn apply(self, event: SubmissionEvent) -> Result<Self, SubmissionTransitionError> {
        use SubmissionEvent as E;
        use SubmissionState as S;
        match (self, event) {
            (S::Queued, E::Persisted) => Ok(S::Persisted),
            (S::Persisted, E::Stored) => Ok(S::Stored),
            (S::Queued | S::Persisted, E::Failed) => Ok(S::Failed),
            (S::Failed, E::Retried) => Ok(S::Queued),
            (from, event) => Err(SubmissionTransitionError { from, event }),
        }
    }

    /// True once nothing more happens to the submission.
    pub fn is_settled(self) -> bool {
        matches!(self, Self::Stored | Self::Failed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use SubmissionEvent as E;
    use SubmissionState as S;

    #[test]
    fn submissions_go_queued_persisted_stored_and_may_fail_until_stored() {
        assert_eq!(S::Queued.apply(E::Persisted), Ok(S::Persisted));
        assert_eq!(S::Persisted.apply(E::Stored), Ok(S::Stored));
        assert_eq!(S::Queued.apply(E::Failed), Ok(S::Failed));
        assert_eq!(S::Persisted.apply(E::Failed), Ok(S::Failed));
        assert!(
            S::Queued.apply(E::Stored).is_err(),
            "stored before persisted"
        );
        assert!(S::Stored.apply(E::Failed).is_err());
        assert!(S::Failed.apply(E::Persisted).is_err());
        assert!(S::Stored.is_settled() && S::Failed.is_settled() && !S::Persisted.is_settled());
    }

    #[test]
    fn fields_are_trimmed_and_bounded() {
        let f = ItemFields::parse("  Font pack  ", " twelve fonts ").unwrap();
        assert_eq!((f.title(), f.description()), ("Font pack", "twelve fonts"));
        assert!(ItemFields::parse("   ", "").is_err());
        assert!(ItemFields::parse(&"x".repeat(201), "").is_err());
        assert!(
            ItemFields::parse(&"é".repeat(200), "").is_ok(),
            "characters, not bytes"
        );
        assert!(ItemFields::parse("a\nb", "").is_err());
        assert!(ItemFields::parse("ok", &"d".repeat(20_001)).is_err());
        assert!(ItemFields::parse("Fonts \u{202E}exe.", "").is_err());
        assert!(ItemFields::parse("Fonts", "two\nlines\tand a tab").is_ok());
        assert!(ItemFields::parse("Fonts", "bell\u{7}").is_err());
        assert!(ItemFields::parse("Fonts", "hidden \u{2066}text").is_err());
    }

    #[test]
    fn idempotency_keys_are_short_visible_ascii() {
        assert!("order-42/attempt".parse::<IdempotencyKey>().is_ok());
        assert!("".parse::<IdempotencyKey>().is_err());
        assert!("has space".parse::<IdempotencyKey>().is_err());
        assert!("k".repeat(129).parse::<IdempotencyKey>().is_err());
    }

    #[test]
    fn a_video_item_holds_one_file() {
        assert_eq!(ItemKind::Video.max_files(), 1);
        assert_eq!("video".parse::<ItemKind>().ok(), Some(ItemKind::Video));
        assert!("film".parse::<ItemKind>().is_err());
    }
}
