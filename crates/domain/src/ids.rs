use std::fmt;
use std::str::FromStr;

use uuid::Uuid;

use crate::DomainError;

/// Declares a UUID v7 id type: ids sort by creation time and never collide, and
/// the only way in from text is a parse that names what was expected.
macro_rules! uuid_id {
    ($(#[$doc:meta])* $name:ident, $invalid:expr) => {
        $(#[$doc])*
        #[derive(
            Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize,
            serde::Deserialize,
        )]
        #[serde(transparent)]
        #[cfg_attr(feature = "diesel", derive(diesel::expression::AsExpression, diesel::deserialize::FromSqlRow))]
        #[cfg_attr(feature = "diesel", diesel(sql_type = diesel::sql_types::Uuid))]
        pub struct $name(Uuid);

        impl $name {
            /// A fresh id.
            pub fn new() -> Self {
                Self(Uuid::now_v7())
            }

            /// The id as a UUID.
            pub fn as_uuid(&self) -> Uuid {
                self.0
            }
        }

        impl Default for $name {
            fn default() -> Self {
                Self::new()
            }
        }

        impl From<Uuid> for $name {
            fn from(value: Uuid) -> Self {
                Self(value)
            }
        }

        impl FromStr for $name {
            type Err = DomainError;

            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Uuid::parse_str(s.trim())
                    .map(Self)
                    .map_err(|_| $invalid(s.chars().take(64).collect()))
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.fmt(f)
            }
        }

        #[cfg(feature = "diesel")]
        impl diesel::serialize::ToSql<diesel::sql_types::Uuid, diesel::pg::Pg> for $name {
            fn to_sql<'b>(
                &'b self,
                out: &mut diesel::serialize::Output<'b, '_, diesel::pg::Pg>,
            ) -> diesel::serialize::Result {
                <Uuid as diesel::serialize::ToSql<diesel::sql_types::Uuid, diesel::pg::Pg>>::to_sql(
                    &self.0, out,
                )
            }
        }

        #[cfg(feature = "diesel")]
        impl diesel::deserialize::FromSql<diesel::sql_types::Uuid, diesel::pg::Pg> for $name {
            fn from_sql(bytes: diesel::pg::PgValue<'_>) -> diesel::deserialize::Result<Self> {
                <Uuid as diesel::deserialize::FromSql<diesel::sql_types::Uuid, diesel::pg::Pg>>::from_sql(
                    bytes,
                )
                .map(Self)
            }
        }
    };
}

uuid_id!(
    /// An upload's id.
    UploadId,
    DomainError::InvalidUploadId
);

uuid_id!(
    /// An item's id.
    ItemId,
    DomainError::InvalidItemId
);

uuid_id!(
    /// The id of one file of an item: the line its versions form.
    FileId,
    DomainError::InvalidFileId
);

uuid_id!(
    /// The id of one SubmitItem call and its background work.
    SubmissionId,
    DomainError::InvalidSubmissionId
);

uuid_id!(
    /// A seller notification's id, sent with every delivery so receivers can
    /// de-duplicate.
    NotificationId,
    DomainError::InvalidNotificationId
);

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
    fn each_id_kind_names_itself_when_refused() {
        assert!(matches!(
            "x".parse::<ItemId>(),
            Err(DomainError::InvalidItemId(_))
        ));
        assert!(matches!(
            "x".parse::<FileId>(),
            Err(DomainError::InvalidFileId(_))
        ));
    }

    #[test]
    fn garbage_is_refused() {
        assert!(matches!(
            "not-an-id".parse::<UploadId>(),
            Err(DomainError::InvalidUploadId(_))
        ));
    }
}
