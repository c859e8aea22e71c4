//! Who may call what: the callers' roles, the scopes a service holds, every RPC
//! of the API, and the one table that says, for each RPC and role, whether the
//! call is allowed and on whose resources. The server's authorization layer reads
//! this table and nothing else; the README's table is held equal to it by a test.

use crate::SellerId;
use crate::words::vocabulary;

vocabulary! {
    /// The kind of caller a token names (its `role` claim).
    pub enum Role as "role" {
        /// A seller: their own uploads and items.
        Seller = "seller",
        /// A buyer: items granted to them, read and downloaded.
        Buyer = "buyer",
        /// One of the marketplace's services, acting for a seller or buyer it
        /// names in the call, within its scopes.
        Service = "service",
        /// An operator: reads everything; downloads only what was granted to them.
        Ops = "ops",
    }
}

vocabulary! {
    /// What a service's token lets it do (its space-separated `scope` claim).
    pub enum Scope as "scope" {
        /// Create uploads, sign and send parts, complete and abort them.
        UploadsWrite = "uploads:write",
        /// Read and watch uploads.
        UploadsRead = "uploads:read",
        /// Submit items and change their current versions.
        ItemsSubmit = "items:submit",
        /// Read and watch items and list their versions.
        ItemsRead = "items:read",
        /// Grant and revoke access to items.
        AccessGrant = "access:grant",
        /// Get download links.
        DownloadsRead = "downloads:read",
    }
}

vocabulary! {
    /// Every RPC of the API, by its method name.
    pub enum Rpc as "rpc" {
        /// `UploadService.CreateUpload`.
        CreateUpload = "CreateUpload",
        /// `UploadService.SignPart`.
        SignPart = "SignPart",
        /// `UploadService.SignParts`.
        SignParts = "SignParts",
        /// `UploadService.ListUploadedParts`.
        ListUploadedParts = "ListUploadedParts",
        /// `UploadService.CompleteUpload`.
        CompleteUpload = "CompleteUpload",
        /// `UploadService.AbortUpload`.
        AbortUpload = "AbortUpload",
        /// `UploadService.GetUpload`.
        GetUpload = "GetUpload",
        /// `UploadService.WatchProgress`.
        WatchProgress = "WatchProgress",
        /// `ItemService.SubmitItem`.
        SubmitItem = "SubmitItem",
        /// `ItemService.GetItem`.
        GetItem = "GetItem",
        /// `ItemService.WatchItem`.
        WatchItem = "WatchItem",
        /// `ItemService.ListVersions`.
        ListVersions = "ListVersions",
        /// `ItemService.SetCurrentVersion`.
        SetCurrentVersion = "SetCurrentVersion",
        /// `ItemService.GetDownloadUrl`.
        GetDownloadUrl = "GetDownloadUrl",
        /// `ItemService.GrantAccess`.
        GrantAccess = "GrantAccess",
        /// `ItemService.RevokeAccess`.
        RevokeAccess = "RevokeAccess",
    }
}

/// The gRPC service of the upload RPCs.
pub const UPLOAD_SERVICE: &str = "upload.v1.UploadService";
/// The gRPC service of the item RPCs.
pub const ITEM_SERVICE: &str = "upload.v1.ItemService";

impl Rpc {
    /// The gRPC service the RPC belongs to.
    pub fn service(self) -> &'static str {
        match self {
            Self::CreateUpload
            | Self::SignPart
            | Self::SignParts
            | Self::ListUploadedParts
            | Self::CompleteUpload
            | Self::AbortUpload
            | Self::GetUpload
            | Self::WatchProgress => UPLOAD_SERVICE,
            _ => ITEM_SERVICE,
        }
    }

    /// The RPC a request path (`/upload.v1.UploadService/CreateUpload`) names;
    /// `None` for any path that is not one of ours, which is refused.
    pub fn from_path(path: &str) -> Option<Self> {
        let (service, method) = path.strip_prefix('/')?.split_once('/')?;
        let rpc: Self = method.parse().ok()?;
        (rpc.service() == service).then_some(rpc)
    }

    /// The request path of the RPC.
    pub fn path(self) -> String {
        format!("/{}/{}", self.service(), self.as_str())
    }
}

/// What the table allows one role on one RPC.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rule {
    /// Not allowed, whatever the resource.
    Deny,
    /// On the caller's own resources (and, for reads of items, items granted to
    /// the caller).
    Own,
    /// On items granted to the caller, and nothing they merely own.
    Granted,
    /// For a service holding the scope, on the resources of the seller or buyer
    /// it names in the call.
    ActFor(Scope),
    /// On anyone's resources, reading only.
    ReadAny,
}

impl Rule {
    /// The rule as the README's table writes it.
    pub fn describe(self) -> String {
        match self {
            Self::Deny => "—".to_owned(),
            Self::Own => "own".to_owned(),
            Self::Granted => "granted".to_owned(),
            Self::ActFor(scope) => format!("for {scope}"),
            Self::ReadAny => "any".to_owned(),
        }
    }
}

/// The authorization table: one row per RPC, one rule per role in the order of
/// [`Role::ALL`] (seller, buyer, service, ops).
pub const TABLE: &[(Rpc, [Rule; 4])] = {
    use Rule::{ActFor, Deny, Granted, Own, ReadAny};
    use Scope::*;
    &[
        (Rpc::CreateUpload, [Own, Deny, ActFor(UploadsWrite), Deny]),
        (Rpc::SignPart, [Own, Deny, ActFor(UploadsWrite), Deny]),
        (Rpc::SignParts, [Own, Deny, ActFor(UploadsWrite), Deny]),
        (
            Rpc::ListUploadedParts,
            [Own, Deny, ActFor(UploadsWrite), ReadAny],
        ),
        (Rpc::CompleteUpload, [Own, Deny, ActFor(UploadsWrite), Deny]),
        (Rpc::AbortUpload, [Own, Deny, ActFor(UploadsWrite), Deny]),
        (Rpc::GetUpload, [Own, Deny, ActFor(UploadsRead), ReadAny]),
        (
            Rpc::WatchProgress,
            [Own, Deny, ActFor(UploadsRead), ReadAny],
        ),
        (Rpc::SubmitItem, [Own, Deny, ActFor(ItemsSubmit), Deny]),
        (Rpc::GetItem, [Own, Granted, ActFor(ItemsRead), ReadAny]),
        (Rpc::WatchItem, [Own, Deny, ActFor(ItemsRead), ReadAny]),
        (
            Rpc::ListVersions,
            [Own, Granted, ActFor(ItemsRead), ReadAny],
        ),
        (
            Rpc::SetCurrentVersion,
            [Own, Deny, ActFor(ItemsSubmit), Deny],
        ),
        (
            Rpc::GetDownloadUrl,
            [Own, Granted, ActFor(DownloadsRead), Granted],
        ),
        (Rpc::GrantAccess, [Own, Deny, ActFor(AccessGrant), Deny]),
        (Rpc::RevokeAccess, [Own, Deny, ActFor(AccessGrant), Deny]),
    ]
};

/// What `role` may do with `rpc`.
pub fn rule(rpc: Rpc, role: Role) -> Rule {
    let column = Role::ALL
        .iter()
        .position(|r| *r == role)
        .expect("every role has a column");
    TABLE
        .iter()
        .find(|(r, _)| *r == rpc)
        .map_or(Rule::Deny, |(_, rules)| rules[column])
}

/// How far a service may act for others, as the deployment configures it
/// (`UPLOAD_SERVICE_ACT_FOR`): for which roles, and whether it may state a
/// seller's group. A service configured for no one acts for no one.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Delegation {
    /// The roles it may act for: sellers, buyers or both.
    pub for_roles: Vec<Role>,
    /// Whether it may say which group the seller it acts for is in (their size
    /// limit); otherwise that seller counts as standard.
    pub states_group: bool,
}

/// Why a service may not act as it asked.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DelegationRefusal {
    /// Only a role the service is configured for may be acted for.
    #[error(
        "the service {service} may not act for a {role}; UPLOAD_SERVICE_ACT_FOR names whom each service acts for"
    )]
    RoleNotDelegated {
        /// The service.
        service: String,
        /// The role it asked to act for.
        role: Role,
    },
    /// The service may act for several roles and did not say which.
    #[error(
        "the service {service} acts for more than one role: name the role (seller or buyer) in x-upload-act-for-role"
    )]
    RoleUnstated {
        /// The service.
        service: String,
    },
    /// The role acted for may not make this call.
    #[error("acting for a {role}, the service {service} may not call {rpc}")]
    NotForRole {
        /// The service.
        service: String,
        /// The role acted for.
        role: Role,
        /// The call.
        rpc: Rpc,
    },
    /// The service may not state a seller's group.
    #[error(
        "the service {service} may not state a seller's group (x-upload-act-for-group); UPLOAD_SERVICE_ACT_FOR says which services may"
    )]
    GroupNotDelegated {
        /// The service.
        service: String,
    },
}

impl Delegation {
    /// How far `service`, holding the scope `rpc` needs, reaches when it acts for
    /// someone of role `stated` (from its header; `None` when it sent none) and
    /// `states_group` says whether it named a group: the role acted for and its
    /// reach, or why not. Acting for a role never reaches further than that
    /// role's own column of the table.
    pub fn reach(
        &self,
        service: &SellerId,
        rpc: Rpc,
        stated: Option<Role>,
        states_group: bool,
    ) -> Result<(Role, Reach), DelegationRefusal> {
        let service_name = || service.as_str().to_owned();
        let role = match (stated, self.for_roles.as_slice()) {
            (Some(role), roles) if roles.contains(&role) => role,
            (Some(role), _) => {
                return Err(DelegationRefusal::RoleNotDelegated {
                    service: service_name(),
                    role,
                });
            }
            (None, [only]) => *only,
            (None, []) => {
                return Err(DelegationRefusal::RoleNotDelegated {
                    service: service_name(),
                    role: Role::Seller,
                });
            }
            (None, _) => {
                return Err(DelegationRefusal::RoleUnstated {
                    service: service_name(),
                });
            }
        };
        if states_group && !(self.states_group && role == Role::Seller) {
            return Err(DelegationRefusal::GroupNotDelegated {
                service: service_name(),
            });
        }
        let reach = match rule(rpc, role) {
            Rule::Own => Reach::Own,
            Rule::Granted => Reach::Granted,
            Rule::Deny | Rule::ActFor(_) | Rule::ReadAny => {
                return Err(DelegationRefusal::NotForRole {
                    service: service_name(),
                    role,
                    rpc,
                });
            }
        };
        Ok((role, reach))
    }
}

/// Who called, as their token says: a role, a subject (a seller's or buyer's id,
/// a service's or an operator's name) and, for a service, its scopes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    /// The token's role.
    pub role: Role,
    /// The token's subject.
    pub subject: SellerId,
    /// A service's scopes; empty for every other role.
    pub scopes: Vec<Scope>,
}

/// Whose resources a call may reach, as the authorization layer decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reach {
    /// The subject's own resources, and items granted to the subject for reading.
    Own,
    /// Only items granted to the subject.
    Granted,
    /// Anyone's, for reading.
    Any,
}

impl Reach {
    /// Whether a resource owned by `owner` is the subject's to reach by ownership.
    pub fn reaches_owned(self, subject: &SellerId, owner: &SellerId) -> bool {
        match self {
            Self::Own => subject == owner,
            Self::Granted => false,
            Self::Any => true,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_rpc_has_one_row_and_paths_round_trip() {
        for rpc in Rpc::ALL {
            assert_eq!(
                TABLE.iter().filter(|(r, _)| r == rpc).count(),
                1,
                "{rpc} has one row"
            );
            assert_eq!(Rpc::from_path(&rpc.path()), Some(*rpc));
        }
        assert_eq!(TABLE.len(), Rpc::ALL.len());
        for path in [
            "/upload.v1.ItemService/CreateUpload",
            "/upload.v1.UploadService/Nope",
            "/upload.v2.UploadService/GetUpload",
            "/grpc.health.v1.Health/Check",
            "",
            "/",
        ] {
            assert_eq!(Rpc::from_path(path), None, "{path}");
        }
    }

    #[test]
    fn buyers_read_and_download_granted_items_and_nothing_else() {
        for rpc in Rpc::ALL {
            let expected = match rpc {
                Rpc::GetItem | Rpc::ListVersions | Rpc::GetDownloadUrl => Rule::Granted,
                _ => Rule::Deny,
            };
            assert_eq!(rule(*rpc, Role::Buyer), expected, "{rpc}");
        }
    }

    #[test]
    fn ops_read_everything_change_nothing_and_download_only_when_granted() {
        for rpc in Rpc::ALL {
            let got = rule(*rpc, Role::Ops);
            match rpc {
                Rpc::GetDownloadUrl => assert_eq!(got, Rule::Granted),
                Rpc::CreateUpload
                | Rpc::SignPart
                | Rpc::SignParts
                | Rpc::CompleteUpload
                | Rpc::AbortUpload
                | Rpc::SubmitItem
                | Rpc::SetCurrentVersion
                | Rpc::GrantAccess
                | Rpc::RevokeAccess => assert_eq!(got, Rule::Deny, "{rpc}"),
                _ => assert_eq!(got, Rule::ReadAny, "{rpc}"),
            }
        }
    }

    #[test]
    fn sellers_own_everything_and_services_need_a_scope_for_each_call() {
        for rpc in Rpc::ALL {
            assert_eq!(rule(*rpc, Role::Seller), Rule::Own, "{rpc}");
            assert!(
                matches!(rule(*rpc, Role::Service), Rule::ActFor(_)),
                "{rpc}"
            );
        }
    }

    #[test]
    fn the_readme_table_is_this_table() {
        let rows: Vec<Vec<String>> = TABLE
            .iter()
            .map(|(rpc, rules)| {
                std::iter::once(rpc.to_string())
                    .chain(rules.iter().map(|r| r.describe()))
                    .collect()
            })
            .collect();
        assert_eq!(crate::readme::table("Who may call what"), rows);
    }

    #[test]
    fn a_service_acts_only_for_the_roles_and_groups_it_was_given() {
        let orders: SellerId = "orders".parse().unwrap();
        let sellers_only = Delegation {
            for_roles: vec![Role::Seller],
            states_group: false,
        };
        let both = Delegation {
            for_roles: vec![Role::Seller, Role::Buyer],
            states_group: true,
        };
        let nobody = Delegation::default();
        use DelegationRefusal as R;
        type Case<'a> = (
            &'a Delegation,
            Rpc,
            Option<Role>,
            bool,
            Result<(Role, Reach), fn(&R) -> bool>,
        );
        let cases: &[Case] = &[
            (
                &sellers_only,
                Rpc::GrantAccess,
                None,
                false,
                Ok((Role::Seller, Reach::Own)),
            ),
            (
                &sellers_only,
                Rpc::GrantAccess,
                Some(Role::Seller),
                false,
                Ok((Role::Seller, Reach::Own)),
            ),
            (
                &sellers_only,
                Rpc::GetDownloadUrl,
                Some(Role::Buyer),
                false,
                Err(|r| {
                    matches!(
                        r,
                        R::RoleNotDelegated {
                            role: Role::Buyer,
                            ..
                        }
                    )
                }),
            ),
            (
                &sellers_only,
                Rpc::CreateUpload,
                None,
                true,
                Err(|r| matches!(r, R::GroupNotDelegated { .. })),
            ),
            (
                &sellers_only,
                Rpc::GetItem,
                Some(Role::Ops),
                false,
                Err(|r| {
                    matches!(
                        r,
                        R::RoleNotDelegated {
                            role: Role::Ops,
                            ..
                        }
                    )
                }),
            ),
            (
                &both,
                Rpc::GetItem,
                None,
                false,
                Err(|r| matches!(r, R::RoleUnstated { .. })),
            ),
            (
                &both,
                Rpc::GetDownloadUrl,
                Some(Role::Buyer),
                false,
                Ok((Role::Buyer, Reach::Granted)),
            ),
            (
                &both,
                Rpc::CreateUpload,
                Some(Role::Buyer),
                false,
                Err(|r| {
                    matches!(
                        r,
                        R::NotForRole {
                            role: Role::Buyer,
                            rpc: Rpc::CreateUpload,
                            ..
                        }
                    )
                }),
            ),
            (
                &both,
                Rpc::CreateUpload,
                Some(Role::Seller),
                true,
                Ok((Role::Seller, Reach::Own)),
            ),
            (
                &both,
                Rpc::GetItem,
                Some(Role::Buyer),
                true,
                Err(|r| matches!(r, R::GroupNotDelegated { .. })),
            ),
            (
                &nobody,
                Rpc::GetItem,
                None,
                false,
                Err(|r| matches!(r, R::RoleNotDelegated { .. })),
            ),
        ];
        for (delegation, rpc, stated, group, expected) in cases {
            let got = delegation.reach(&orders, *rpc, *stated, *group);
            match (expected, &got) {
                (Ok(want), Ok(have)) => assert_eq!(want, have, "{rpc} {stated:?}"),
                (Err(is), Err(refusal)) => assert!(is(refusal), "{rpc} {stated:?}: {refusal}"),
                _ => panic!("{rpc} {stated:?} {group}: {got:?}"),
            }
        }
    }

    #[test]
    fn reach_by_ownership() {
        let (a, b): (SellerId, SellerId) = ("a".parse().unwrap(), "b".parse().unwrap());
        assert!(Reach::Own.reaches_owned(&a, &a));
        assert!(!Reach::Own.reaches_owned(&a, &b));
        assert!(!Reach::Granted.reaches_owned(&a, &a));
        assert!(Reach::Any.reaches_owned(&a, &b));
    }
}
