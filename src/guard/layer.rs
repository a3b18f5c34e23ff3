//! [`RequireLayer`]: a [`Requirement`] as middleware, for axum's `route_layer` and for tonic
//! services, placed inside an [`AuthLayer`](crate::AuthLayer) (see the [order of
//! layers](super#order-of-layers)).

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};

use bytes::Bytes;
use http::{Request, Response};
use pin_project_lite::pin_project;
use tower_layer::Layer;
use tower_service::Service;

use super::{Requirement, authorize};
use crate::body::AuthBody;
use crate::reject::{DefaultReject, Reject, is_grpc};

/// Rejects requests whose [`Principal`](crate::Principal) does not meet a [`Requirement`]
/// (403), that the layer let through without credentials (401), or that no
/// [`AuthLayer`](crate::AuthLayer) saw before (500, a misordered layer: see the [order of
/// layers](super#order-of-layers)).
#[derive(Clone, Debug)]
#[must_use]
pub struct RequireLayer<R = DefaultReject> {
    requirement: Arc<Requirement>,
    reject: R,
}

impl RequireLayer {
    /// Requires `requirement`.
    pub fn new(requirement: Requirement) -> Self {
        RequireLayer {
            requirement: Arc::new(requirement),
            reject: DefaultReject,
        }
    }
}

impl<R> RequireLayer<R> {
    /// Uses `reject` to build rejection responses.
    pub fn with_rejection<R2: Reject>(self, reject: R2) -> RequireLayer<R2> {
        RequireLayer {
            requirement: self.requirement,
            reject,
        }
    }
}

impl<S, R: Clone> Layer<S> for RequireLayer<R> {
    type Service = Require<S, R>;
    fn layer(&self, inner: S) -> Self::Service {
        Require {
            inner,
            requirement: self.requirement.clone(),
            reject: self.reject.clone(),
        }
    }
}

/// The service built by [`RequireLayer`].
#[derive(Clone, Debug)]
#[must_use]
pub struct Require<S, R> {
    inner: S,
    requirement: Arc<Requirement>,
    reject: R,
}

pin_project! {
    /// Response future of [`Require`].
    pub struct RequireFuture<F> {
        #[pin]
        kind: Kind<F>,
    }
}

pin_project! {
    #[project = KindProj]
    enum Kind<F> {
        Inner { #[pin] future: F },
        Rejected { response: Option<Response<Bytes>> },
    }
}

impl<F, B, E> Future for RequireFuture<F>
where
    F: Future<Output = Result<Response<B>, E>>,
{
    type Output = Result<Response<AuthBody<B>>, E>;
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.project().kind.project() {
            KindProj::Inner { future } => {
                Poll::Ready(Ok(ready!(future.poll(cx))?.map(AuthBody::inner)))
            }
            KindProj::Rejected { response } => Poll::Ready(Ok(response
                .take()
                .expect("polled after completion")
                .map(AuthBody::rejection))),
        }
    }
}

impl<S, R, ReqBody, ResBody> Service<Request<ReqBody>> for Require<S, R>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>>,
    R: Reject,
{
    type Response = Response<AuthBody<ResBody>>;
    type Error = S::Error;
    type Future = RequireFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<ReqBody>) -> Self::Future {
        let refusal = match authorize(req.extensions(), Some(&self.requirement)) {
            Ok(_) => {
                return RequireFuture {
                    kind: Kind::Inner {
                        future: self.inner.call(req),
                    },
                };
            }
            Err(refusal) => refusal,
        };
        let response = self
            .reject
            .reject(&refusal.rejection(is_grpc(req.headers())));
        RequireFuture {
            kind: Kind::Rejected {
                response: Some(response),
            },
        }
    }
}
