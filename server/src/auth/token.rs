//! Bearer tokens: their claims, the keys that verify them (asymmetric keys from
//! the issuers' JWKS, by `kid`; an HS256 secret only where local development opts
//! in), and what a verified token says.

use std::sync::Arc;

use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use upload_domain::{Principal, Role, Scope, SellerGroup, SellerId};

use super::jwks::{JwksSource, KeySet};

/// The claims of a bearer token.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Claims {
    /// The subject: a seller's or buyer's id, a service's or an operator's name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sub: Option<String>,
    /// The caller's role: `seller`, `buyer`, `service` or `ops`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<String>,
    /// A seller's group: `standard` or `premium` (sellers only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
    /// A service's scopes, space-separated (`items:submit access:grant`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
    /// Expiry, seconds since the epoch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exp: Option<u64>,
    /// Issue time, seconds since the epoch.
    #[serde(default)]
    pub iat: u64,
    /// The issuer (checked against `UPLOAD_JWT_ISSUER` when set).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iss: Option<String>,
    /// The audience (checked against `UPLOAD_JWT_AUDIENCE` when set): one, or
    /// several of which ours must be one, as RFC 7519 allows.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub aud: Option<Audience>,
    /// Not valid before, seconds since the epoch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nbf: Option<u64>,
}

/// A token's `aud`: a string, or an array of strings.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(untagged)]
pub enum Audience {
    /// One audience.
    One(String),
    /// Several.
    Many(Vec<String>),
}

impl From<String> for Audience {
    fn from(one: String) -> Self {
        Self::One(one)
    }
}

/// The longest bearer token accepted, in bytes: ours are a few hundred.
pub const MAX_TOKEN_BYTES: usize = 4096;

/// The clock difference allowed between a token's issuer and this server.
const LEEWAY_SECS: u64 = 5;

/// The keys tokens are checked with: the JWKS's (EdDSA, ES256, RS256) and, where
/// local development opts in, an HS256 secret, which also mints.
#[derive(Clone, Default)]
pub struct TokenKeys {
    hs256: Option<Hs256>,
    jwks: Option<Arc<KeySet>>,
    issuer: Option<String>,
    audience: Option<String>,
}

#[derive(Clone)]
struct Hs256 {
    decoding: Arc<DecodingKey>,
    encoding: Arc<EncodingKey>,
}

impl TokenKeys {
    /// HS256 tokens signed with `secret` alone (local development and tests).
    pub fn new(secret: &str) -> Self {
        Self::default().with_hs256(secret)
    }

    /// The keys the configuration names: the JWKS is read now (failing when it
    /// cannot be) and again every `jwks_refresh`.
    pub async fn from_config(auth: &upload_config::AuthConfig) -> Result<Self, String> {
        let mut keys = Self::default().expecting(auth.issuer.clone(), auth.audience.clone());
        if let Some(source) = &auth.jwks {
            let set = KeySet::load(JwksSource::parse(source)).await?;
            set.refresh_every(auth.jwks_refresh);
            keys = keys.with_jwks(set);
        }
        if let Some(secret) = &auth.jwt_secret {
            keys = keys.with_hs256(secret);
        }
        Ok(keys)
    }

    /// Also accepts (and mints) HS256 tokens signed with `secret`.
    pub fn with_hs256(mut self, secret: &str) -> Self {
        self.hs256 = Some(Hs256 {
            decoding: Arc::new(DecodingKey::from_secret(secret.as_bytes())),
            encoding: Arc::new(EncodingKey::from_secret(secret.as_bytes())),
        });
        self
    }

    /// Accepts tokens signed by a key of `keys`.
    pub fn with_jwks(mut self, keys: Arc<KeySet>) -> Self {
        self.jwks = Some(keys);
        self
    }

    /// Requires every token's `iss` and `aud` to be these.
    pub fn expecting(mut self, issuer: Option<String>, audience: Option<String>) -> Self {
        self.issuer = issuer;
        self.audience = audience;
        self
    }

    /// Issues an HS256 token for a seller, valid for `ttl`.
    pub fn mint(
        &self,
        seller: &SellerId,
        group: SellerGroup,
        ttl: std::time::Duration,
    ) -> Result<String, String> {
        self.mint_claims(
            Claims {
                sub: Some(seller.to_string()),
                role: Some(Role::Seller.as_str().to_owned()),
                group: Some(group.as_str().to_owned()),
                ..Claims::default()
            },
            ttl,
        )
    }

    /// Issues an HS256 token carrying `claims` (subject, role, group, scopes),
    /// issued now and valid for `ttl`.
    pub fn mint_claims(
        &self,
        mut claims: Claims,
        ttl: std::time::Duration,
    ) -> Result<String, String> {
        let hs256 = self
            .hs256
            .as_ref()
            .ok_or("no HS256 secret: tokens are minted with a signing key")?;
        claims.stamp(ttl)?;
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &hs256.encoding)
            .map_err(|e| e.to_string())
    }

    /// The algorithms accepted here, for messages.
    fn accepted(&self) -> String {
        let mut names = Vec::new();
        if self.jwks.is_some() {
            names.extend(["EdDSA", "ES256", "RS256"]);
        }
        if self.hs256.is_some() {
            names.push("HS256");
        }
        names.join(", ")
    }

    /// Who a token names, or a message saying what is wrong with it.
    pub async fn verify(&self, token: &str) -> Result<Verified, String> {
        if token.len() > MAX_TOKEN_BYTES {
            return Err(format!(
                "the bearer token is {} bytes long; tokens of at most {MAX_TOKEN_BYTES} bytes are accepted",
                token.len()
            ));
        }
        let (alg, kid) = token_header(token)?;
        let (key, algorithm) = match (alg.as_str(), &self.hs256, &self.jwks) {
            ("HS256", Some(hs256), _) => (Arc::clone(&hs256.decoding), Algorithm::HS256),
            ("EdDSA" | "ES256" | "RS256", _, Some(jwks)) => {
                let kid = kid.ok_or("the bearer token's header names no key (kid)")?;
                let key = jwks.key(&kid).await.ok_or_else(|| {
                    format!(
                        "the bearer token's key {kid:?} is not in the issuers' key set (retired, or another issuer's)"
                    )
                })?;
                if format!("{:?}", key.algorithm) != alg {
                    return Err(format!(
                        "the bearer token names {alg} but its key {kid:?} is for {:?}",
                        key.algorithm
                    ));
                }
                (key.decoding, key.algorithm)
            }
            _ => {
                return Err(format!(
                    "the bearer token is signed with {alg:?}; accepted here: {}",
                    self.accepted()
                ));
            }
        };
        let mut validation = Validation::new(algorithm);
        let mut required = vec!["exp", "sub"];
        validation.validate_nbf = true;
        validation.leeway = LEEWAY_SECS;
        match &self.issuer {
            Some(issuer) => {
                validation.set_issuer(&[issuer]);
                required.push("iss");
            }
            None => validation.iss = None,
        }
        match &self.audience {
            Some(audience) => {
                validation.set_audience(&[audience]);
                required.push("aud");
            }
            None => validation.validate_aud = false,
        }
        validation.set_required_spec_claims(&required);
        let data = jsonwebtoken::decode::<Claims>(token, &key, &validation)
            .map_err(|e| refusal(e.kind()))?;
        Verified::from_claims(data.claims)
    }
}

impl Claims {
    /// Sets `iat` to now and `exp` to `ttl` from now.
    pub fn stamp(&mut self, ttl: std::time::Duration) -> Result<(), String> {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_err(|e| e.to_string())?
            .as_secs();
        self.iat = now;
        self.exp = Some(now + ttl.as_secs());
        Ok(())
    }
}

/// What a verified token says: who called, a seller's group, and when it expires.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    /// The caller's role, subject and scopes.
    pub principal: Principal,
    /// A seller's group (standard for every other role).
    pub group: SellerGroup,
    /// When the token expires.
    pub expiry: TokenExpiry,
}

impl Verified {
    /// Reads the claims of a token whose signature and times were checked.
    pub(crate) fn from_claims(claims: Claims) -> Result<Self, String> {
        let expiry = TokenExpiry(
            std::time::UNIX_EPOCH
                + std::time::Duration::from_secs(
                    claims.exp.ok_or("the bearer token has no exp claim")?,
                ),
        );
        let subject = claims
            .sub
            .ok_or("the bearer token has no sub claim")?
            .parse::<SellerId>()
            .map_err(|e| format!("the bearer token's subject is unusable: {e}"))?;
        let role = claims
            .role
            .ok_or("the bearer token has no role claim (seller, buyer, service or ops)")?
            .parse::<Role>()
            .map_err(|e| format!("the bearer token's role is unusable: {e}"))?;
        let group = match (role, claims.group) {
            (_, Some(group)) => group
                .parse::<SellerGroup>()
                .map_err(|e| format!("the bearer token's group is unusable: {e}"))?,
            (Role::Seller, None) => {
                return Err("the bearer token has no group claim (standard or premium)".to_owned());
            }
            (_, None) => SellerGroup::Standard,
        };
        // Scopes mean something for services alone; on any other token they are ignored.
        let scopes = match role {
            Role::Service => claims
                .scope
                .unwrap_or_default()
                .split_whitespace()
                .map(str::parse::<Scope>)
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| format!("the bearer token's scope claim is unusable: {e}"))?,
            _ => Vec::new(),
        };
        Ok(Self {
            principal: Principal {
                role,
                subject,
                scopes,
            },
            group,
            expiry,
        })
    }
}

/// When the token of a request expires; the auth layer records it beside the
/// caller, so a long-lived stream can end when its token does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TokenExpiry(pub std::time::SystemTime);

/// The `alg` and `kid` a token's header names, read before anything is trusted,
/// so a token for another algorithm (or `none`) is refused by name.
fn token_header(token: &str) -> Result<(String, Option<String>), String> {
    use base64::Engine;
    const MALFORMED: &str =
        "the bearer token is not a well-formed JWT (header.claims.signature, base64url)";
    let mut segments = token.split('.');
    let (Some(header), Some(_), Some(_), None) = (
        segments.next(),
        segments.next(),
        segments.next(),
        segments.next(),
    ) else {
        return Err(MALFORMED.to_owned());
    };
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(header)
        .map_err(|_| MALFORMED.to_owned())?;
    #[derive(Deserialize)]
    struct Head {
        alg: Option<String>,
        kid: Option<String>,
    }
    let head: Head = serde_json::from_slice(&bytes).map_err(|_| MALFORMED.to_owned())?;
    let alg = head
        .alg
        .ok_or_else(|| "the bearer token's header names no algorithm".to_owned())?;
    Ok((alg, head.kid))
}

/// What is wrong with a token the library refused, in words the caller can act on.
fn refusal(kind: &jsonwebtoken::errors::ErrorKind) -> String {
    use jsonwebtoken::errors::ErrorKind;
    match kind {
        ErrorKind::ExpiredSignature => "the bearer token has expired; get a new one".to_owned(),
        ErrorKind::ImmatureSignature => {
            "the bearer token is not valid yet (its nbf is in the future)".to_owned()
        }
        ErrorKind::InvalidSignature => {
            "the bearer token's signature does not match: it was not issued for this service"
                .to_owned()
        }
        ErrorKind::MissingRequiredClaim(claim) => {
            format!("the bearer token has no {claim} claim")
        }
        ErrorKind::InvalidClaimFormat(claim) => {
            format!("the bearer token's {claim} claim is malformed")
        }
        ErrorKind::Json(e) => format!("the bearer token's claims are malformed: {e}"),
        ErrorKind::InvalidAlgorithm | ErrorKind::MissingAlgorithm => {
            "the bearer token's algorithm does not match its key".to_owned()
        }
        ErrorKind::InvalidIssuer => {
            "the bearer token's issuer (iss) is not the one this service trusts".to_owned()
        }
        ErrorKind::InvalidAudience => {
            "the bearer token is for another audience (aud) than this service".to_owned()
        }
        _ => "the bearer token is not a well-formed JWT (header.claims.signature, base64url)"
            .to_owned(),
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    #[tokio::test]
    async fn minted_tokens_verify_and_forged_ones_do_not() {
        let keys = TokenKeys::new("0123456789abcdef0123456789abcdef");
        let seller: SellerId = "s-1".parse().unwrap();
        let token = keys
            .mint(
                &seller,
                SellerGroup::Premium,
                std::time::Duration::from_secs(60),
            )
            .unwrap();
        let verified = keys.verify(&token).await.unwrap();
        assert_eq!(verified.principal.subject, seller);
        assert_eq!(verified.principal.role, Role::Seller);
        assert_eq!(verified.group, SellerGroup::Premium);

        let other = TokenKeys::new("another-secret-another-secret-xx");
        assert!(other.verify(&token).await.is_err());
        assert!(keys.verify("not.a.token").await.is_err());
    }

    #[tokio::test]
    async fn expired_tokens_are_refused_with_a_reason() {
        let keys = TokenKeys::new("0123456789abcdef0123456789abcdef");
        let claims = Claims {
            sub: Some("s-1".into()),
            role: Some(Role::Seller.as_str().into()),
            group: Some(SellerGroup::Standard.as_str().into()),
            iat: 1,
            exp: Some(2),
            ..Claims::default()
        };
        let encoding = &keys.hs256.as_ref().unwrap().encoding;
        let token =
            jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, encoding).unwrap();
        assert!(keys.verify(&token).await.unwrap_err().contains("expired"));
    }

    pub(crate) fn claims(role: Option<Role>, scope: Option<&str>) -> Claims {
        Claims {
            sub: Some("catalogue".into()),
            role: role.map(|r| r.as_str().to_owned()),
            scope: scope.map(str::to_owned),
            exp: Some(u64::MAX / 2),
            ..Claims::default()
        }
    }

    #[test]
    fn roles_and_scopes_are_read_from_the_claims_and_unknown_ones_refused() {
        let service = Verified::from_claims(claims(
            Some(Role::Service),
            Some("items:submit  access:grant"),
        ))
        .unwrap();
        assert_eq!(
            service.principal.scopes,
            vec![Scope::ItemsSubmit, Scope::AccessGrant]
        );
        assert!(
            Verified::from_claims(claims(None, None))
                .unwrap_err()
                .contains("no role claim")
        );
        let mut unknown = claims(None, None);
        unknown.role = Some("admin".into());
        assert!(
            Verified::from_claims(unknown)
                .unwrap_err()
                .contains("unknown role")
        );
        assert!(
            Verified::from_claims(claims(Some(Role::Service), Some("items:submit root")))
                .unwrap_err()
                .contains("unknown scope \"root\"")
        );
        // A seller's token must say the group; a buyer's need not.
        assert!(
            Verified::from_claims(claims(Some(Role::Seller), None))
                .unwrap_err()
                .contains("group")
        );
        let buyer = Verified::from_claims(claims(Some(Role::Buyer), Some("items:submit"))).unwrap();
        assert!(buyer.principal.scopes.is_empty(), "scopes are for services");
    }
}
