//! [`Auth`]: the middleware service.

use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use http::{Request, Response};
use tower_service::Service;

use super::body::AuthBody;
use super::future::ResponseFuture;
use super::layer::Shared;
use crate::authenticator::Lookup;
use crate::error::AuthError;
use crate::reject::{Reject, Rejection, is_grpc};
use crate::user::Principal;

/// Authenticates requests, then calls the inner service. Built by
/// [`AuthLayer`](super::AuthLayer).
#[derive(Clone, Debug)]
#[must_use]
pub struct Auth<S, R> {
    pub(crate) inner: S,
    pub(crate) shared: Arc<Shared<R>>,
}

impl<S, R> Auth<S, R> {
    /// The inner service.
    pub fn get_ref(&self) -> &S {
        &self.inner
    }

    /// The inner service, mutably.
    pub fn get_mut(&mut self) -> &mut S {
        &mut self.inner
    }

    /// Consumes the middleware, returning the inner service.
    pub fn into_inner(self) -> S {
        self.inner
    }
}

impl<R: Reject> Shared<R> {
    /// Guards and minting for an authenticated request; then the principal goes into the
    /// extensions.
    pub(crate) fn admit<B>(
        &self,
        principal: Principal,
        req: &mut Request<B>,
    ) -> Result<(), AuthError> {
        if let Some(req) = &self.require {
            req.check(&principal).map_err(AuthError::Forbidden)?;
        }
        if let Some(minter) = &self.minter {
            let token = minter.mint(&principal).map_err(|e| match e {
                crate::mint::MintError::Expired => AuthError::Invalid,
                other => {
                    tracing::error!(error = %other, "auth.mint.failed");
                    AuthError::Unavailable
                }
            })?;
            req.extensions_mut().insert(token);
        }
        req.extensions_mut().insert(principal);
        Ok(())
    }

    pub(crate) fn reject(&self, error: &AuthError, grpc: bool) -> Response<Bytes> {
        let rejection = Rejection {
            error,
            challenge: self.auth.challenges().for_error(error),
            grpc,
        };
        tracing::debug!(target: "auth_o_tron::rejection", status = error.status().as_u16(), error = %error, "rejected");
        self.reject.reject(&rejection)
    }
}

impl<S, R, ReqBody, ResBody> Service<Request<ReqBody>> for Auth<S, R>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>> + Clone + Send + 'static,
    S::Future: Send,
    ReqBody: Send + 'static,
    R: Reject,
{
    type Response = Response<AuthBody<ResBody>>;
    type Error = S::Error;
    type Future = ResponseFuture<S, ReqBody, R>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: Request<ReqBody>) -> Self::Future {
        let shared = &self.shared;
        match shared.auth.lookup(req.headers()) {
            // Decided now: call the service that `poll_ready` readied, no clone needed.
            Lookup::Done(Ok(principal)) => match shared.admit(principal, &mut req) {
                Ok(()) => ResponseFuture::inner(self.inner.call(req)),
                Err(e) => ResponseFuture::rejected(shared.reject(&e, is_grpc(req.headers()))),
            },
            Lookup::Done(Err(AuthError::Missing)) if shared.anonymous => {
                ResponseFuture::inner(self.inner.call(req))
            }
            Lookup::Done(Err(e)) => {
                ResponseFuture::rejected(shared.reject(&e, is_grpc(req.headers())))
            }
            Lookup::Miss(pending) => {
                // The call happens later, in the future: take the readied service with us and
                // leave a fresh clone behind (tower's clone-and-swap).
                let clone = self.inner.clone();
                let inner = std::mem::replace(&mut self.inner, clone);
                let auth = shared.auth.clone();
                let lookup = Box::pin(async move { auth.resolve(pending).await });
                ResponseFuture::authenticating(lookup, inner, req, shared.clone())
            }
        }
    }
}
