//! Bearer-token authentication and authorization as a tower layer. A valid token
//! names a [`Principal`](upload_domain::Principal) (role, subject, a service's
//! scopes); the layer then looks the RPC up in the domain's authorization table
//! and puts the resolved [`Caller`](upload_domain::Caller) (whose resources, how
//! far) into the request's extensions. A bad token is answered UNAUTHENTICATED, a
//! call the table does not allow PERMISSION_DENIED, both before a handler runs.
//! Health and reflection stay open.
//!
//! Where things live: `token` the claims and their verification, `jwks` the
//! issuers' key set (and signing keys for development), `mtls` services known
//! by their client certificates, `authorize` the table's decision; this file the layer and the watch streams' end at token expiry.

mod authorize;
pub mod jwks;
mod mtls;
mod token;

use std::pin::Pin;
use std::task::{Context, Poll};

use futures::Stream;
use upload_domain::Rpc;

pub use authorize::{
    ACT_FOR_GROUP_HEADER, ACT_FOR_HEADER, ACT_FOR_ROLE_HEADER, Delegations, authorize,
};
pub use mtls::MtlsServices;
pub use token::{Audience, Claims, MAX_TOKEN_BYTES, TokenExpiry, TokenKeys, Verified};

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
                Next::Expired => Some((Err(unauthenticated(STREAM_TOKEN_EXPIRED)), (stream, true))),
            }
        },
    ))
}

/// The layer that authenticates every call to the upload API.
#[derive(Clone)]
pub struct AuthLayer {
    keys: TokenKeys,
    mtls: MtlsServices,
    delegations: Delegations,
}

impl AuthLayer {
    /// A layer checking tokens with `keys`.
    pub fn new(keys: TokenKeys) -> Self {
        Self {
            keys,
            mtls: MtlsServices::default(),
            delegations: Delegations::default(),
        }
    }

    /// Also takes the services of `mtls` by their client certificates.
    pub fn with_mtls(mut self, mtls: MtlsServices) -> Self {
        self.mtls = mtls;
        self
    }

    /// Lets services act for others as `delegations` say (no one, otherwise).
    pub fn with_delegations(mut self, delegations: Delegations) -> Self {
        self.delegations = delegations;
        self
    }
}

impl<S> tower::Layer<S> for AuthLayer {
    type Service = Authenticated<S>;

    fn layer(&self, inner: S) -> Self::Service {
        Authenticated {
            inner,
            keys: self.keys.clone(),
            mtls: self.mtls.clone(),
            delegations: self.delegations.clone(),
        }
    }
}

/// A service behind [`AuthLayer`].
#[derive(Clone)]
pub struct Authenticated<S> {
    inner: S,
    keys: TokenKeys,
    mtls: MtlsServices,
    delegations: Delegations,
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
    S: tower::Service<http::Request<B>, Response = http::Response<ResB>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    B: Send + 'static,
    ResB: Default,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = futures::future::BoxFuture<'static, Result<Self::Response, Self::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: http::Request<B>) -> Self::Future {
        use futures::FutureExt;
        // The service polled ready goes with this call; a clone stays for the next.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        if is_public(req.uri().path()) {
            return inner.call(req).boxed();
        }
        let (keys, mtls, delegations) = (
            self.keys.clone(),
            self.mtls.clone(),
            self.delegations.clone(),
        );
        async move {
            let refused = |status: tonic::Status| Ok(status.into_http::<ResB>());
            // A token, or else a service's verified client certificate.
            let verified = match bearer(&req) {
                Ok(token) => keys.verify(token).await,
                Err(message) => mtls.identify(&req).ok_or_else(|| message.to_owned()),
            };
            let verified = match verified {
                Ok(verified) => verified,
                Err(message) => return refused(unauthenticated(message)),
            };
            // A path that is none of our RPCs reaches no handler of ours: the router
            // answers it (UNIMPLEMENTED), with no caller in the request.
            let Some(rpc) = Rpc::from_path(req.uri().path()) else {
                return inner.call(req).await;
            };
            match authorize(&verified, rpc, req.headers(), &delegations) {
                Ok(caller) => {
                    req.extensions_mut().insert(caller);
                    req.extensions_mut().insert(verified.expiry);
                    inner.call(req).await
                }
                Err(status) => refused(status),
            }
        }
        .boxed()
    }
}

/// UNAUTHENTICATED, with its ErrorInfo.
fn unauthenticated(message: impl Into<String>) -> tonic::Status {
    crate::error::refusal_status(
        tonic::Code::Unauthenticated,
        message,
        upload_domain::Refusal::Unauthenticated,
        None,
        None,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

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
