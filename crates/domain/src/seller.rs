use std::fmt;
use std::str::FromStr;

use crate::DomainError;
use crate::words::text_column;

/// A seller's id as the marketplace knows it. Restricted to characters that are
/// safe inside an object key, because it prefixes the seller's temp keys.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[cfg_attr(
    feature = "diesel",
    derive(diesel::expression::AsExpression, diesel::deserialize::FromSqlRow)
)]
#[cfg_attr(feature = "diesel", diesel(sql_type = diesel::sql_types::Text))]
pub struct SellerId(String);

impl SellerId {
    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl FromStr for SellerId {
    type Err = DomainError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let ok = !s.is_empty()
            && s.len() <= 64
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        if ok {
            Ok(Self(s.to_owned()))
        } else {
            Err(DomainError::InvalidSellerId(s.chars().take(80).collect()))
        }
    }
}

impl fmt::Display for SellerId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The seller's group, which sets their upload size limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(
    feature = "diesel",
    derive(diesel::expression::AsExpression, diesel::deserialize::FromSqlRow)
)]
#[cfg_attr(feature = "diesel", diesel(sql_type = diesel::sql_types::Text))]
pub enum SellerGroup {
    /// Standard sellers.
    Standard,
    /// Premium sellers, who may upload larger files.
    Premium,
}

impl SellerGroup {
    /// Every group.
    pub const ALL: &'static [SellerGroup] = &[Self::Standard, Self::Premium];

    /// The group's name as written in tokens.
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Standard => "standard",
            Self::Premium => "premium",
        }
    }
}

impl FromStr for SellerGroup {
    type Err = DomainError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "standard" => Ok(Self::Standard),
            "premium" => Ok(Self::Premium),
            other => Err(DomainError::InvalidSellerGroup(
                other.chars().take(40).collect(),
            )),
        }
    }
}

text_column!(SellerId);
text_column!(SellerGroup);

impl fmt::Display for SellerGroup {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The authenticated caller of an RPC, as the authorization layer resolved it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    /// Whose resources the call acts on: the seller or buyer the token names, or
    /// the one a service names in the call.
    pub seller_id: SellerId,
    /// That seller's group (it sets their size limit).
    pub group: SellerGroup,
    /// Whose resources the call may reach.
    pub reach: crate::Reach,
    /// Who really called: the token's role and subject (a service's or an
    /// operator's own name).
    pub principal: crate::Principal,
}

impl Caller {
    /// A seller calling for themselves.
    pub fn seller(seller_id: SellerId, group: SellerGroup) -> Self {
        Self {
            principal: crate::Principal {
                role: crate::Role::Seller,
                subject: seller_id.clone(),
                scopes: Vec::new(),
            },
            seller_id,
            group,
            reach: crate::Reach::Own,
        }
    }

    /// Whether a resource `owner` owns is within this call's reach by ownership
    /// (grants are checked apart).
    pub fn reaches(&self, owner: &SellerId) -> bool {
        self.reach.reaches_owned(&self.seller_id, owner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seller_ids_must_be_key_safe() {
        assert!("seller-42_a".parse::<SellerId>().is_ok());
        for bad in ["", "a/b", "../x", "a b", &"x".repeat(65)] {
            assert!(bad.parse::<SellerId>().is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn groups_parse_by_name() {
        assert_eq!(
            "premium".parse::<SellerGroup>().unwrap(),
            SellerGroup::Premium
        );
        assert!("gold".parse::<SellerGroup>().is_err());
    }
}
