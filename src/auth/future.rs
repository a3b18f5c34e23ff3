//! [`ResponseFuture`]: the future of [`Auth`](super::Auth).

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};

use bytes::Bytes;
use http::{Request, Response};
use pin_project_lite::pin_project;
use tower_service::Service;

use super::shared::{Decision, Shared};
use crate::authenticator::Authenticated;
use crate::body::AuthBody;
use crate::error::AuthError;
use crate::provider::BoxFuture;
use crate::reject::Reject;

pin_project! {
    /// Response future of [`Auth`](super::Auth).
    pub struct ResponseFuture<S, ReqBody, R>
    where
        S: Service<Request<ReqBody>>,
    {
        #[pin]
        kind: Kind<S, ReqBody, R>,
    }
}

pin_project! {
    #[project = KindProj]
    enum Kind<S, ReqBody, R>
    where
        S: Service<Request<ReqBody>>,
    {
        Inner { #[pin] future: S::Future },
        Rejected { response: Option<Response<Bytes>> },
        Authenticating {
            lookup: BoxFuture<'static, Result<Authenticated, AuthError>>,
            pending: Option<(S, Request<ReqBody>)>,
            shared: Arc<Shared<R>>,
        },
    }
}

impl<S, ReqBody, R> ResponseFuture<S, ReqBody, R>
where
    S: Service<Request<ReqBody>>,
{
    pub(crate) fn inner(future: S::Future) -> Self {
        ResponseFuture {
            kind: Kind::Inner { future },
        }
    }

    pub(crate) fn rejected(response: Response<Bytes>) -> Self {
        ResponseFuture {
            kind: Kind::Rejected {
                response: Some(response),
            },
        }
    }

    pub(crate) fn authenticating(
        lookup: BoxFuture<'static, Result<Authenticated, AuthError>>,
        service: S,
        req: Request<ReqBody>,
        shared: Arc<Shared<R>>,
    ) -> Self {
        ResponseFuture {
            kind: Kind::Authenticating {
                lookup,
                pending: Some((service, req)),
                shared,
            },
        }
    }
}

impl<S, ReqBody, R, ResBody> Future for ResponseFuture<S, ReqBody, R>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>>,
    R: Reject,
{
    type Output = Result<Response<AuthBody<ResBody>>, S::Error>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut this = self.project();
        loop {
            match this.kind.as_mut().project() {
                KindProj::Inner { future } => {
                    let res = ready!(future.poll(cx))?;
                    return Poll::Ready(Ok(res.map(AuthBody::inner)));
                }
                KindProj::Rejected { response } => {
                    let res = response.take().expect("polled after completion");
                    return Poll::Ready(Ok(res.map(AuthBody::rejection)));
                }
                KindProj::Authenticating {
                    lookup,
                    pending,
                    shared,
                } => {
                    let outcome = ready!(lookup.as_mut().poll(cx));
                    let (mut service, mut req) = pending.take().expect("polled after completion");
                    match shared.decide(outcome, &mut req) {
                        Decision::Call => this.kind.set(Kind::Inner {
                            future: service.call(req),
                        }),
                        Decision::Reject(rejection) => {
                            return Poll::Ready(Ok(rejection.map(AuthBody::rejection)));
                        }
                    }
                }
            }
        }
    }
}
