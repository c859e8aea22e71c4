//! Bearer-token authentication as a tower layer. A valid token becomes a typed
//! [`Caller`] in the request's extensions; anything else is answered with
//! UNAUTHENTICATED before a handler runs. Health and reflection stay open.

use std::sync::Arc;
use std::task::{Context, Poll};

use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use upload_domain::{Caller, SellerGroup, SellerId};

/// The claims of a seller's bearer token.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Claims {
    /// The seller's id.
    pub sub: String,
    /// The seller's group: `standard` or `premium`.
    pub group: String,
    /// Expiry, seconds since the epoch.
    pub exp: u64,
    /// Issue time, seconds since the epoch.
    pub iat: u64,
}

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
            sub: seller.to_string(),
            group: group.as_str().to_owned(),
            iat: now,
            exp: now + ttl.as_secs(),
        };
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &self.encoding)
            .map_err(|e| e.to_string())
    }

    /// The caller a token names, or a message saying what is wrong with it.
    pub fn verify(&self, token: &str) -> Result<Caller, String> {
        let data = jsonwebtoken::decode::<Claims>(token, &self.decoding, &self.validation)
            .map_err(|e| match e.kind() {
                jsonwebtoken::errors::ErrorKind::ExpiredSignature => {
                    "the bearer token has expired; get a new one".to_owned()
                }
                _ => "the bearer token is invalid".to_owned(),
            })?;
        let seller_id = data
            .claims
            .sub
            .parse::<SellerId>()
            .map_err(|e| e.to_string())?;
        let group = data
            .claims
            .group
            .parse::<SellerGroup>()
            .map_err(|e| e.to_string())?;
        Ok(Caller { seller_id, group })
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
            .and_then(|t| self.keys.verify(t));
        match caller {
            Ok(caller) => {
                req.extensions_mut().insert(caller);
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
            sub: "s-1".into(),
            group: "standard".into(),
            iat: 1,
            exp: 2,
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
