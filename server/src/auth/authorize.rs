//! Authorization: the domain's table decides what a verified caller may call, and
//! on whose resources; a service acts for the seller or buyer it names, as far as
//! its delegation (`UPLOAD_SERVICE_ACT_FOR`) and that role's own rights allow.

use std::collections::HashMap;
use std::sync::Arc;

use upload_domain::{Caller, Delegation, Reach, Refusal, Role, Rpc, Rule, SellerGroup, SellerId};

use crate::error::refusal_status;

use super::token::Verified;

/// The header in which a service names the seller or buyer it acts for.
pub const ACT_FOR_HEADER: &str = "x-upload-act-for";
/// The header in which a service says whether it acts for a seller or a buyer
/// (needed only by a service that may act for both).
pub const ACT_FOR_ROLE_HEADER: &str = "x-upload-act-for-role";
/// The header in which a service names that seller's group (standard if absent),
/// where its delegation lets it.
pub const ACT_FOR_GROUP_HEADER: &str = "x-upload-act-for-group";

/// Whom each service may act for, by the service's name.
#[derive(Debug, Clone, Default)]
pub struct Delegations(Arc<HashMap<SellerId, Delegation>>);

/// A service's delegation where none is configured: it acts for no one.
static NOBODY: Delegation = Delegation {
    for_roles: Vec::new(),
    states_group: false,
};

impl Delegations {
    /// From the configured `(service, delegation)` pairs.
    pub fn new(configured: &[(SellerId, Delegation)]) -> Self {
        Self(Arc::new(configured.iter().cloned().collect()))
    }

    fn of(&self, service: &SellerId) -> &Delegation {
        self.0.get(service).unwrap_or(&NOBODY)
    }
}

/// The caller of `rpc` as the authorization table resolves it for a verified
/// token, or the status refusing the call.
pub fn authorize(
    verified: &Verified,
    rpc: Rpc,
    headers: &http::HeaderMap,
    delegations: &Delegations,
) -> Result<Caller, tonic::Status> {
    let principal = &verified.principal;
    let on = |seller_id: SellerId, group: SellerGroup, reach: Reach| Caller {
        seller_id,
        group,
        reach,
        principal: principal.clone(),
    };
    let header = |name: &str| {
        headers
            .get(name)
            .map(|v| v.to_str().map(str::trim).unwrap_or_default())
    };
    let act_for_headers = [ACT_FOR_HEADER, ACT_FOR_ROLE_HEADER, ACT_FOR_GROUP_HEADER];
    if principal.role != Role::Service
        && let Some(sent) = act_for_headers.iter().find(|h| headers.contains_key(**h))
    {
        return Err(denied(format!(
            "only a service acts for someone: a {} token may not send {sent}",
            principal.role
        )));
    }
    let subject = principal.subject.clone();
    match upload_domain::rule(rpc, principal.role) {
        Rule::Deny => Err(denied(format!(
            "a {} token may not call {rpc}; the README's authorization table lists what each role may call",
            principal.role
        ))),
        Rule::Own => Ok(on(subject, verified.group, Reach::Own)),
        Rule::Granted => Ok(on(subject, verified.group, Reach::Granted)),
        Rule::ReadAny => Ok(on(subject, verified.group, Reach::Any)),
        Rule::ActFor(scope) => {
            if !principal.scopes.contains(&scope) {
                return Err(denied(format!(
                    "the service {} may not call {rpc}: its token lacks the {scope} scope",
                    principal.subject
                )));
            }
            let seller: SellerId = header(ACT_FOR_HEADER)
                .filter(|v| !v.is_empty())
                .ok_or_else(|| {
                    bad_header(
                        ACT_FOR_HEADER,
                        format!(
                            "a service names the seller or buyer it acts for in the {ACT_FOR_HEADER} header"
                        ),
                    )
                })?
                .parse()
                .map_err(|e| bad_header(ACT_FOR_HEADER, format!("{ACT_FOR_HEADER} is unusable: {e}")))?;
            let stated_role = header(ACT_FOR_ROLE_HEADER)
                .map(|raw| {
                    raw.parse::<Role>().map_err(|e| {
                        bad_header(
                            ACT_FOR_ROLE_HEADER,
                            format!("{ACT_FOR_ROLE_HEADER} is unusable: {e}"),
                        )
                    })
                })
                .transpose()?;
            let group = header(ACT_FOR_GROUP_HEADER)
                .map(|raw| {
                    raw.parse::<SellerGroup>().map_err(|e| {
                        bad_header(
                            ACT_FOR_GROUP_HEADER,
                            format!("{ACT_FOR_GROUP_HEADER} is unusable: {e}"),
                        )
                    })
                })
                .transpose()?;
            let (role, reach) = delegations
                .of(&principal.subject)
                .reach(&principal.subject, rpc, stated_role, group.is_some())
                .map_err(|refusal| denied(refusal.to_string()))?;
            tracing::info!(
                target: "audit",
                service = %principal.subject,
                acting_for = %seller,
                %role,
                %rpc,
                "a service acts for a seller or buyer"
            );
            Ok(on(seller, group.unwrap_or(SellerGroup::Standard), reach))
        }
    }
}

/// PERMISSION_DENIED, with its ErrorInfo.
fn denied(message: String) -> tonic::Status {
    refusal_status(
        tonic::Code::PermissionDenied,
        message,
        Refusal::PermissionDenied,
        None,
        None,
    )
}

/// INVALID_ARGUMENT about a header, named in the BadRequest detail.
fn bad_header(header: &str, message: String) -> tonic::Status {
    refusal_status(
        tonic::Code::InvalidArgument,
        message,
        Refusal::InvalidArgument,
        Some(header),
        None,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::token::tests::claims;

    #[test]
    fn the_table_decides_and_a_service_acts_for_whom_it_names() {
        let verified = |role, scope| Verified::from_claims(claims(Some(role), scope)).unwrap();
        let mut headers = http::HeaderMap::new();
        let delegations = Delegations::new(&[(
            "catalogue".parse().unwrap(),
            Delegation {
                for_roles: vec![Role::Seller],
                states_group: true,
            },
        )]);
        let code = |v: &Verified, rpc, h: &http::HeaderMap| {
            authorize(v, rpc, h, &delegations).unwrap_err().code()
        };
        assert_eq!(
            code(&verified(Role::Buyer, None), Rpc::CreateUpload, &headers),
            tonic::Code::PermissionDenied
        );
        let service = verified(Role::Service, Some("items:submit"));
        assert_eq!(
            code(&service, Rpc::GrantAccess, &headers),
            tonic::Code::PermissionDenied
        );
        assert_eq!(
            code(&service, Rpc::SubmitItem, &headers),
            tonic::Code::InvalidArgument
        );
        headers.insert(ACT_FOR_HEADER, "seller-7".parse().unwrap());
        headers.insert(ACT_FOR_GROUP_HEADER, "premium".parse().unwrap());
        let caller = authorize(&service, Rpc::SubmitItem, &headers, &delegations).unwrap();
        assert_eq!(caller.seller_id.as_str(), "seller-7");
        assert_eq!(caller.group, SellerGroup::Premium);
        assert_eq!(caller.reach, Reach::Own);
        assert_eq!(caller.principal.subject.as_str(), "catalogue");
        // Nobody but a service may send the headers.
        assert_eq!(
            code(&verified(Role::Ops, None), Rpc::GetUpload, &headers),
            tonic::Code::PermissionDenied
        );
        let ops = authorize(
            &verified(Role::Ops, None),
            Rpc::GetUpload,
            &http::HeaderMap::new(),
            &delegations,
        )
        .unwrap();
        assert_eq!(ops.reach, Reach::Any);
        assert_eq!(ops.seller_id.as_str(), "catalogue", "ops act as themselves");
    }
}
