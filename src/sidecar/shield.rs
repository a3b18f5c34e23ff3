//! Load shedding and panic catching for every request, in one service: requests beyond the
//! concurrency limit are refused at once with 503 (never queued), and a panic while handling
//! one becomes a 500 (never a crash, never a pass).
//!
//! This replaces axum's `HandleErrorLayer` with tower's `LoadShed` and `ConcurrencyLimit` and
//! tower-http's `CatchPanic`, which together cost about 3 000 instructions per request: a
//! clone of the whole stack and a boxed future per request (`HandleError`), a boxed response
//! body (`CatchPanic`), and a semaphore whose release takes a lock. Here the slot is one atomic
//! counter and the body is passed through.

use std::convert::Infallible;
use std::future::Future;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context, Poll};

use http::{HeaderValue, Request, Response, StatusCode, header::CONTENT_TYPE};
use pin_project_lite::pin_project;
use tower_service::Service;

use crate::AuthBody;

/// The service: at most `max` requests of `inner` at once.
#[derive(Clone, Debug)]
pub struct Shield<S> {
    inner: S,
    running: Arc<AtomicUsize>,
    max: usize,
}

impl<S> Shield<S> {
    /// Shields `inner`, letting `max` requests (at least one) run at once.
    pub fn new(inner: S, max: usize) -> Self {
        Shield {
            inner,
            running: Arc::default(),
            max: max.max(1),
        }
    }
}

/// Frees a request's slot when its future completes or is dropped.
#[derive(Debug)]
struct Slot(Arc<AtomicUsize>);

impl Drop for Slot {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Release);
    }
}

/// A JSON refusal the app never saw (also the connection's, see `conn::Tracked`).
pub(super) fn refusal<B>(status: StatusCode, body: &'static str) -> Response<AuthBody<B>> {
    let mut res = Response::new(AuthBody::from(body));
    *res.status_mut() = status;
    res.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    res
}

fn panicked<B>() -> Response<AuthBody<B>> {
    tracing::error!(
        event_name = "request.panic",
        "a handler panicked; the request is answered 500"
    );
    refusal(
        StatusCode::INTERNAL_SERVER_ERROR,
        r#"{"error":"internal error"}"#,
    )
}

impl<S, B, ResBody> Service<Request<B>> for Shield<S>
where
    S: Service<Request<B>, Response = Response<ResBody>, Error = Infallible>,
{
    type Response = Response<AuthBody<ResBody>>;
    type Error = Infallible;
    type Future = ShieldFuture<S::Future, ResBody>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<B>) -> Self::Future {
        if self.running.fetch_add(1, Ordering::Acquire) >= self.max {
            self.running.fetch_sub(1, Ordering::Release);
            return ShieldFuture::done(refusal(
                StatusCode::SERVICE_UNAVAILABLE,
                r#"{"error":"overloaded"}"#,
            ));
        }
        let slot = Slot(self.running.clone());
        match catch_unwind(AssertUnwindSafe(|| self.inner.call(req))) {
            Ok(future) => ShieldFuture {
                kind: Kind::Running {
                    future,
                    _slot: slot,
                },
            },
            Err(_) => ShieldFuture::done(panicked()),
        }
    }
}

pin_project! {
    /// The future of [`Shield`].
    #[derive(Debug)]
    pub struct ShieldFuture<F, ResBody> {
        #[pin]
        kind: Kind<F, ResBody>,
    }
}

pin_project! {
    #[project = KindProj]
    #[derive(Debug)]
    enum Kind<F, ResBody> {
        Running { #[pin] future: F, _slot: Slot },
        Done { res: Option<Response<AuthBody<ResBody>>> },
    }
}

impl<F, ResBody> ShieldFuture<F, ResBody> {
    fn done(res: Response<AuthBody<ResBody>>) -> Self {
        ShieldFuture {
            kind: Kind::Done { res: Some(res) },
        }
    }
}

impl<F, ResBody> Future for ShieldFuture<F, ResBody>
where
    F: Future<Output = Result<Response<ResBody>, Infallible>>,
{
    type Output = Result<Response<AuthBody<ResBody>>, Infallible>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.project().kind.project() {
            KindProj::Running { future, .. } => {
                match catch_unwind(AssertUnwindSafe(|| future.poll(cx))) {
                    Ok(Poll::Ready(Ok(res))) => Poll::Ready(Ok(res.map(AuthBody::inner))),
                    Ok(Poll::Pending) => Poll::Pending,
                    // Answered at once; hyper polls a finished future no more.
                    Err(_) => Poll::Ready(Ok(panicked())),
                }
            }
            KindProj::Done { res } => match res.take() {
                Some(res) => Poll::Ready(Ok(res)),
                None => Poll::Pending,
            },
        }
    }
}
