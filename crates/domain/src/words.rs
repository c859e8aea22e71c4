//! How the vocabulary is declared: every closed set of domain words (states,
//! stages, verdicts, codes, kinds, buckets) is an enum made by [`vocabulary!`],
//! with one name per variant, a parse that refuses anything unknown, and (with the
//! `diesel` feature) its own text column type, so rows hold the enum itself.

/// A word read from outside (a row, a request) that is not in the vocabulary.
/// Reading it fails: nothing unknown is ever taken for a known word.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown {what} {value:?}")]
pub struct UnknownWord {
    /// Which vocabulary was asked (`upload state`, `scan verdict`, ...).
    pub what: &'static str,
    /// The word that was given, cut to 64 characters.
    pub value: String,
}

impl UnknownWord {
    /// The refusal of `value` as a word of `what`.
    pub fn new(what: &'static str, value: &str) -> Self {
        Self {
            what,
            value: value.chars().take(64).collect(),
        }
    }
}

/// Declares a vocabulary enum: `as_str`, `ALL`, `FromStr` (failing with
/// [`UnknownWord`]), `Display`, and a PostgreSQL `text` mapping under the `diesel`
/// feature.
macro_rules! vocabulary {
    (
        $(#[$meta:meta])*
        pub enum $name:ident as $what:literal {
            $($(#[$vmeta:meta])* $variant:ident = $word:literal),+ $(,)?
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        #[cfg_attr(feature = "diesel", derive(diesel::expression::AsExpression, diesel::deserialize::FromSqlRow))]
        #[cfg_attr(feature = "diesel", diesel(sql_type = diesel::sql_types::Text))]
        pub enum $name {
            $($(#[$vmeta])* $variant),+
        }

        impl $name {
            /// Every word, in declaration order.
            pub const ALL: &'static [$name] = &[$(Self::$variant),+];

            /// The word as stored and sent.
            pub const fn as_str(self) -> &'static str {
                match self {
                    $(Self::$variant => $word),+
                }
            }
        }

        impl std::str::FromStr for $name {
            type Err = $crate::UnknownWord;

            fn from_str(s: &str) -> Result<Self, Self::Err> {
                match s {
                    $($word => Ok(Self::$variant),)+
                    other => Err($crate::UnknownWord::new($what, other)),
                }
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        $crate::words::text_column!($name);
    };
}

/// A PostgreSQL `text` mapping for a type with `as_str` and a `FromStr` whose
/// error is an error: written as its word, read by parsing it (an unknown word
/// fails the read).
#[cfg(feature = "diesel")]
macro_rules! text_column {
    ($name:ty) => {
        impl diesel::serialize::ToSql<diesel::sql_types::Text, diesel::pg::Pg> for $name {
            fn to_sql<'b>(
                &'b self,
                out: &mut diesel::serialize::Output<'b, '_, diesel::pg::Pg>,
            ) -> diesel::serialize::Result {
                <str as diesel::serialize::ToSql<diesel::sql_types::Text, diesel::pg::Pg>>::to_sql(
                    self.as_str(),
                    out,
                )
            }
        }

        impl diesel::deserialize::FromSql<diesel::sql_types::Text, diesel::pg::Pg> for $name {
            fn from_sql(
                bytes: <diesel::pg::Pg as diesel::backend::Backend>::RawValue<'_>,
            ) -> diesel::deserialize::Result<Self> {
                let text = <String as diesel::deserialize::FromSql<
                    diesel::sql_types::Text,
                    diesel::pg::Pg,
                >>::from_sql(bytes)?;
                Ok(text.parse::<$name>()?)
            }
        }
    };
}

#[cfg(not(feature = "diesel"))]
macro_rules! text_column {
    ($name:ty) => {};
}

pub(crate) use {text_column, vocabulary};

#[cfg(test)]
mod tests {
    use crate::{
        Bucket, FailureCode, ItemKind, NotificationKind, PreviewKind, ScanVerdict, SellerGroup,
        Stage, StageStatus, SubmissionState, UploadState,
    };

    /// Every word parses back to its variant, and no two variants share a word.
    fn round_trips<T>(all: &[T])
    where
        T: Copy + PartialEq + std::fmt::Debug + std::fmt::Display + std::str::FromStr,
        T::Err: std::fmt::Debug,
    {
        let mut seen = std::collections::HashSet::new();
        for w in all {
            let word = w.to_string();
            assert!(seen.insert(word.clone()), "{word} used twice");
            assert_eq!(word.parse::<T>().unwrap(), *w);
        }
    }

    #[test]
    fn every_vocabulary_round_trips_and_refuses_unknown_words() {
        round_trips(UploadState::ALL);
        round_trips(crate::PartChecksum::ALL);
        round_trips(SubmissionState::ALL);
        round_trips(Stage::ALL);
        round_trips(StageStatus::ALL);
        round_trips(ScanVerdict::ALL);
        round_trips(FailureCode::ALL);
        round_trips(NotificationKind::ALL);
        round_trips(Bucket::ALL);
        round_trips(PreviewKind::ALL);
        round_trips(ItemKind::ALL);
        round_trips(SellerGroup::ALL);
        let err = "Clean".parse::<ScanVerdict>().unwrap_err();
        assert_eq!(err.what, "scan verdict");
        assert!("".parse::<FailureCode>().is_err());
        assert!("upload.Failed".parse::<NotificationKind>().is_err());
    }
}
