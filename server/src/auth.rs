//! Bearer-token authentication and authorization as a tower layer. A valid token
//! names a [`Principal`] (role, subject, a service's scopes); the layer then looks
//! the RPC up in the domain's authorization table and puts the resolved
//! [`Caller`] (whose resources, how far) into the request's extensions. A bad
//! token is answered UNAUTHENTICATED, a call the table does not allow
//! PERMISSION_DENIED, both before a handler runs. Health and reflection stay open.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use futures::Stream;

use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use upload_domain::{Caller, Principal, Reach, Role, Rpc, Rule, Scope, SellerGroup, SellerId};

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
    /// Not valid before, seconds since the epoch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nbf: Option<u64>,
}

/// The longest bearer token accepted, in bytes: ours are a few hundred.
pub const MAX_TOKEN_BYTES: usize = 4096;

/// The one signing algorithm tokens may name.
const ALGORITHM: &str = "HS256";

/// Checks and issues HS256 tokens with one secret.
#[derive(Clone)]
pub struct TokenKeys {
    decoding: Arc<DecodingKey>,
    encoding: Arc<EncodingKey>,
    validation: Arc<Validation>,
}

impl TokenKeys {
    /// Keys for `secret`.
    pub fn new(secret: &str) -> Self {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.set_required_spec_claims(&["exp", "sub"]);
        validation.validate_nbf = true;
        validation.leeway = 5;
        Self {
            decoding: Arc::new(DecodingKey::from_secret(secret.as_bytes())),
            encoding: Arc::new(EncodingKey::from_secret(secret.as_bytes())),
            validation: Arc::new(validation),
        }
    }

    /// Issues a token for a seller, valid for `ttl`.
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

    /// Issues a token carrying `claims` (subject, role, group, scopes), issued now
    /// and valid for `ttl`.
    pub fn mint_claims(
        &self,
        mut claims: Claims,
        ttl: std::time::Duration,
    ) -> Result<String, String> {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_err(|e| e.to_string())?
            .as_secs();
        claims.iat = now;
        claims.exp = Some(now + ttl.as_secs());
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &self.encoding)
            .map_err(|e| e.to_string())
    }

    /// Who a token names, or a message saying what is wrong with it.
    pub fn verify(&self, token: &str) -> Result<Verified, String> {
        if token.len() > MAX_TOKEN_BYTES {
            return Err(format!(
                "the bearer token is {} bytes long; tokens of at most {MAX_TOKEN_BYTES} bytes are accepted",
                token.len()
            ));
        }
        let alg = signing_algorithm(token)?;
        if alg != ALGORITHM {
            return Err(format!(
                "the bearer token is signed with {alg:?}; only {ALGORITHM} tokens are accepted"
            ));
        }
        let data = jsonwebtoken::decode::<Claims>(token, &self.decoding, &self.validation)
            .map_err(|e| refusal(e.kind()))?;
        Verified::from_claims(data.claims)
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
    fn from_claims(claims: Claims) -> Result<Self, String> {
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

/// The header in which a service names the seller or buyer it acts for.
pub const ACT_FOR_HEADER: &str = "x-upload-act-for";
/// The header in which a service names that seller's group (standard if absent).
pub const ACT_FOR_GROUP_HEADER: &str = "x-upload-act-for-group";

/// The caller of `rpc` as the authorization table resolves it for a verified
/// token, or the status refusing the call.
pub fn authorize(
    verified: &Verified,
    rpc: Rpc,
    headers: &http::HeaderMap,
) -> Result<Caller, tonic::Status> {
    let principal = &verified.principal;
    let on = |seller_id: SellerId, group: SellerGroup, reach: Reach| Caller {
        seller_id,
        group,
        reach,
        principal: principal.clone(),
    };
    let subject = principal.subject.clone();
    match upload_domain::rule(rpc, principal.role) {
        Rule::Deny => Err(tonic::Status::permission_denied(format!(
            "a {} token may not call {rpc}; the README's authorization table lists what each role may call",
            principal.role
        ))),
        Rule::Own => Ok(on(subject, verified.group, Reach::Own)),
        Rule::Granted => Ok(on(subject, verified.group, Reach::Granted)),
        Rule::ReadAny => Ok(on(subject, verified.group, Reach::Any)),
        Rule::ActFor(scope) => {
            if !principal.scopes.contains(&scope) {
                return Err(tonic::Status::permission_denied(format!(
                    "the service {} may not call {rpc}: its token lacks the {scope} scope",
                    principal.subject
                )));
            }
            let header = |name: &str| {
                headers
                    .get(name)
                    .map(|v| v.to_str().map(str::trim).unwrap_or_default())
            };
            let seller: SellerId = header(ACT_FOR_HEADER)
                .filter(|v| !v.is_empty())
                .ok_or_else(|| {
                    tonic::Status::invalid_argument(format!(
                        "a service names the seller or buyer it acts for in the {ACT_FOR_HEADER} header"
                    ))
                })?
                .parse()
                .map_err(|e| {
                    tonic::Status::invalid_argument(format!("{ACT_FOR_HEADER} is unusable: {e}"))
                })?;
            let group = match header(ACT_FOR_GROUP_HEADER) {
                None => SellerGroup::Standard,
                Some(raw) => raw.parse().map_err(|e| {
                    tonic::Status::invalid_argument(format!(
                        "{ACT_FOR_GROUP_HEADER} is unusable: {e}"
                    ))
                })?,
            };
            tracing::info!(
                target: "audit",
                service = %principal.subject,
                acting_for = %seller,
                %rpc,
                "a service acts for a seller or buyer"
            );
            Ok(on(seller, group, Reach::Own))
        }
    }
}

/// When the token of a request expires; the auth layer records it beside the
/// caller, so a long-lived stream can end when its token does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TokenExpiry(pub std::time::SystemTime);

/// What a stream says when the token that opened it expires.
pub const STREAM_TOKEN_EXPIRED: &str =
    "the bearer token of this stream has expired; watch again with a new token";

/// Ends `stream` with UNAUTHENTICATED once `expiry` passes: a watch lives no
/// longer than the token that opened it.
pub fn until_expiry<T: Send + 'static>(
    stream: Pin<Box<dyn Stream<Item = Result<T, tonic::Status>> + Send>>,
    expiry: Option<TokenExpiry>,
) -> Pin<Box<dyn Stream<Item = Result<T, tonic::Status>> + Send>> {
    use futures::StreamExt;
    let Some(TokenExpiry(at)) = expiry else {
        return stream;
    };
    let left = at
        .duration_since(std::time::SystemTime::now())
        .unwrap_or_default();
    let deadline = tokio::time::Instant::now() + left;
    enum Next<T> {
        Item(Option<Result<T, tonic::Status>>),
        Expired,
    }
    Box::pin(futures::stream::unfold(
        (stream, false),
        move |(mut stream, ended)| async move {
            if ended {
                return None;
            }
            let next = tokio::select! {
                item = stream.next() => Next::Item(item),
                () = tokio::time::sleep_until(deadline) => Next::Expired,
            };
            match next {
                Next::Item(Some(item)) => Some((item, (stream, false))),
                Next::Item(None) => None,
                Next::Expired => Some((
                    Err(tonic::Status::unauthenticated(STREAM_TOKEN_EXPIRED)),
                    (stream, true),
                )),
            }
        },
    ))
}

/// The `alg` a token's header names, read before anything is trusted, so a token
/// for another algorithm (or `none`) is refused by name.
fn signing_algorithm(token: &str) -> Result<String, String> {
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
    }
    let head: Head = serde_json::from_slice(&bytes).map_err(|_| MALFORMED.to_owned())?;
    head.alg
        .ok_or_else(|| "the bearer token's header names no algorithm".to_owned())
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
            format!("only {ALGORITHM} tokens are accepted")
        }
        _ => "the bearer token is not a well-formed JWT (header.claims.signature, base64url)"
            .to_owned(),
    }
}

/// The layer that authenticates every call to the upload API.
#[derive(Clone)]
pub struct AuthLayer {
    keys: TokenKeys,
}

impl AuthLayer {
    /// A layer checking tokens with `keys`.
    pub fn new(keys: TokenKeys) -> Self {
        Self { keys }
    }
}

impl<S> tower::Layer<S> for AuthLayer {
    type Service = Authenticated<S>;

    fn layer(&self, inner: S) -> Self::Service {
        Authenticated {
            inner,
            keys: self.keys.clone(),
        }
    }
}

/// A service behind [`AuthLayer`].
#[derive(Clone)]
pub struct Authenticated<S> {
    inner: S,
    keys: TokenKeys,
}

fn is_public(path: &str) -> bool {
    path.starts_with("/grpc.health.v1.") || path.starts_with("/grpc.reflection.")
}

fn bearer(req: &http::Request<impl Sized>) -> Result<&str, &'static str> {
    let value = req
        .headers()
        .get(http::header::AUTHORIZATION)
        .ok_or("missing authorization: send 'authorization: Bearer <token>'")?;
    let value = value
        .to_str()
        .map_err(|_| "the authorization header is not valid text")?;
    value
        .strip_prefix("Bearer ")
        .or_else(|| value.strip_prefix("bearer "))
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .ok_or("the authorization header must be 'Bearer <token>'")
}

impl<S, B, ResB> tower::Service<http::Request<B>> for Authenticated<S>
where
    S: tower::Service<http::Request<B>, Response = http::Response<ResB>>,
    S::Future: Send + 'static,
    ResB: Default,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future =
        futures::future::Either<S::Future, std::future::Ready<Result<Self::Response, Self::Error>>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: http::Request<B>) -> Self::Future {
        if is_public(req.uri().path()) {
            return futures::future::Either::Left(self.inner.call(req));
        }
        let verified = bearer(&req)
            .map_err(str::to_owned)
            .and_then(|t| self.keys.verify(t));
        let refused = |status: tonic::Status| {
            futures::future::Either::Right(std::future::ready(Ok(status.into_http::<ResB>())))
        };
        let verified = match verified {
            Ok(verified) => verified,
            Err(message) => return refused(tonic::Status::unauthenticated(message)),
        };
        // A path that is none of our RPCs reaches no handler of ours: the router
        // answers it (UNIMPLEMENTED), with no caller in the request.
        let Some(rpc) = Rpc::from_path(req.uri().path()) else {
            return futures::future::Either::Left(self.inner.call(req));
        };
        match authorize(&verified, rpc, req.headers()) {
            Ok(caller) => {
                req.extensions_mut().insert(caller);
                req.extensions_mut().insert(verified.expiry);
                futures::future::Either::Left(self.inner.call(req))
            }
            Err(status) => refused(status),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn minted_tokens_verify_and_forged_ones_do_not() {
        let keys = TokenKeys::new("0123456789abcdef0123456789abcdef");
        let seller: SellerId = "s-1".parse().unwrap();
        let token = keys
            .mint(
                &seller,
                SellerGroup::Premium,
                std::time::Duration::from_secs(60),
            )
            .unwrap();
        let verified = keys.verify(&token).unwrap();
        assert_eq!(verified.principal.subject, seller);
        assert_eq!(verified.principal.role, Role::Seller);
        assert_eq!(verified.group, SellerGroup::Premium);

        let other = TokenKeys::new("another-secret-another-secret-xx");
        assert!(other.verify(&token).is_err());
        assert!(keys.verify("not.a.token").is_err());
    }

    #[test]
    fn expired_tokens_are_refused_with_a_reason() {
        let keys = TokenKeys::new("0123456789abcdef0123456789abcdef");
        let claims = Claims {
            sub: Some("s-1".into()),
            role: Some(Role::Seller.as_str().into()),
            group: Some(SellerGroup::Standard.as_str().into()),
            iat: 1,
            exp: Some(2),
            ..Claims::default()
        };
        let token =
            jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &keys.encoding).unwrap();
        assert!(keys.verify(&token).unwrap_err().contains("expired"));
    }

    fn claims(role: Option<Role>, scope: Option<&str>) -> Claims {
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

    #[test]
    fn the_table_decides_and_a_service_acts_for_whom_it_names() {
        let verified = |role, scope| Verified::from_claims(claims(Some(role), scope)).unwrap();
        let mut headers = http::HeaderMap::new();
        let code =
            |v: &Verified, rpc, h: &http::HeaderMap| authorize(v, rpc, h).unwrap_err().code();
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
        let caller = authorize(&service, Rpc::SubmitItem, &headers).unwrap();
        assert_eq!(caller.seller_id.as_str(), "seller-7");
        assert_eq!(caller.group, SellerGroup::Premium);
        assert_eq!(caller.reach, Reach::Own);
        assert_eq!(caller.principal.subject.as_str(), "catalogue");
        let ops = authorize(&verified(Role::Ops, None), Rpc::GetUpload, &headers).unwrap();
        assert_eq!(ops.reach, Reach::Any);
        assert_eq!(ops.seller_id.as_str(), "catalogue", "ops act as themselves");
    }

    #[test]
    fn bearer_header_shapes() {
        let req = |v: &str| {
            http::Request::builder()
                .header("authorization", v)
                .body(())
                .unwrap()
        };
        assert_eq!(bearer(&req("Bearer abc")), Ok("abc"));
        assert!(bearer(&req("Basic abc")).is_err());
        assert!(bearer(&req("Bearer ")).is_err());
        assert!(bearer(&http::Request::new(())).is_err());
    }
}
