//! Bearer-token authentication as a tower layer. A valid token becomes a typed
//! [`Caller`] in the request's extensions; anything else is answered with
//! UNAUTHENTICATED before a handler runs. Health and reflection stay open.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use futures::Stream;

use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use upload_domain::{Caller, SellerGroup, SellerId};

/// The claims of a seller's bearer token.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Claims {
    /// The seller's id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sub: Option<String>,
    /// The seller's group: `standard` or `premium`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
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
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_err(|e| e.to_string())?
            .as_secs();
        let claims = Claims {
            sub: Some(seller.to_string()),
            group: Some(group.as_str().to_owned()),
            iat: now,
            exp: Some(now + ttl.as_secs()),
            nbf: None,
        };
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &self.encoding)
            .map_err(|e| e.to_string())
    }

    /// The caller a token names, or a message saying what is wrong with it.
    pub fn verify(&self, token: &str) -> Result<Caller, String> {
        self.verify_until(token).map(|(caller, _)| caller)
    }

    /// The caller a token names and when the token expires.
    pub fn verify_until(&self, token: &str) -> Result<(Caller, TokenExpiry), String> {
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
        let expiry = TokenExpiry(
            std::time::UNIX_EPOCH
                + std::time::Duration::from_secs(
                    data.claims.exp.ok_or("the bearer token has no exp claim")?,
                ),
        );
        let seller_id = data
            .claims
            .sub
            .ok_or("the bearer token has no sub claim")?
            .parse::<SellerId>()
            .map_err(|e| format!("the bearer token's subject is unusable: {e}"))?;
        let group = data
            .claims
            .group
            .ok_or("the bearer token has no group claim (standard or premium)")?
            .parse::<SellerGroup>()
            .map_err(|e| format!("the bearer token's group is unusable: {e}"))?;
        Ok((Caller { seller_id, group }, expiry))
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
        let caller = bearer(&req)
            .map_err(str::to_owned)
            .and_then(|t| self.keys.verify_until(t));
        match caller {
            Ok((caller, expiry)) => {
                req.extensions_mut().insert(caller);
                req.extensions_mut().insert(expiry);
                futures::future::Either::Left(self.inner.call(req))
            }
            Err(message) => {
                let response = tonic::Status::unauthenticated(message).into_http::<ResB>();
                futures::future::Either::Right(std::future::ready(Ok(response)))
            }
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
        let caller = keys.verify(&token).unwrap();
        assert_eq!(caller.seller_id, seller);
        assert_eq!(caller.group, SellerGroup::Premium);

        let other = TokenKeys::new("another-secret-another-secret-xx");
        assert!(other.verify(&token).is_err());
        assert!(keys.verify("not.a.token").is_err());
    }

    #[test]
    fn expired_tokens_are_refused_with_a_reason() {
        let keys = TokenKeys::new("0123456789abcdef0123456789abcdef");
        let claims = Claims {
            sub: Some("s-1".into()),
            group: Some("standard".into()),
            iat: 1,
            exp: Some(2),
            nbf: None,
        };
        let token =
            jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &keys.encoding).unwrap();
        assert!(keys.verify(&token).unwrap_err().contains("expired"));
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
