//! [`Auth`]: the middleware service.

use std::sync::Arc;
use std::task::{Context, Poll};

use http::{Request, Response};
use tower_service::Service;

use super::future::ResponseFuture;
use super::shared::{Decision, Shared};
use crate::authenticator::Lookup;
use crate::body::AuthBody;
use crate::reject::Reject;

/// Authenticates requests, then calls the inner service. Built by
/// [`AuthLayer`](super::AuthLayer).
#[derive(Clone, Debug)]
#[must_use]
pub struct Auth<S, R> {
    inner: S,
    shared: Arc<Shared<R>>,
}

impl<S, R> Auth<S, R> {
    pub(crate) fn new(inner: S, shared: Arc<Shared<R>>) -> Self {
        Auth { inner, shared }
    }

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
        match self.shared.auth.lookup(req.headers()) {
            // Decided now: call the service that `poll_ready` readied, no clone needed.
            Lookup::Done(outcome) => match self.shared.decide(outcome, &mut req) {
                Decision::Call => ResponseFuture::inner(self.inner.call(req)),
                Decision::Reject(rejection) => ResponseFuture::rejected(rejection),
            },
            Lookup::Miss(pending) => {
                // The call happens later, in the future: take the readied service with us and
                // leave a fresh clone behind (tower's clone-and-swap).
                let clone = self.inner.clone();
                let inner = std::mem::replace(&mut self.inner, clone);
                let auth = self.shared.auth.clone();
                let lookup = Box::pin(async move { auth.resolve(pending).await });
                ResponseFuture::authenticating(lookup, inner, req, self.shared.clone())
            }
        }
    }
}
