//! Per-connection deadlines: no connection is held open for free.
//!
//! hyper's own header timeout starts only once it has detected the HTTP version, so a socket
//! that sends nothing, or only part of the HTTP/2 preface, stays open forever; and HTTP/2 has no
//! header timeout at all. Here every connection carries a small shared [`ConnState`] that its
//! IO ([`Watched`]) and its service ([`Tracked`]) update, and one [`watchdog`] future, polled
//! in the connection's own task, closes it when:
//!
//! - no byte arrives within the header timeout of accepting it (first byte);
//! - bytes arrived but no request started within the header timeout of the first of them
//!   (a slow head, the HTTP/2 preface or settings trickled);
//! - it sat idle between requests longer than the idle timeout (keep-alive);
//! - one request runs longer than the request timeout (a slow body, a stuck handler);
//! - the server is at its connection cap and this connection is idle (room for new ones).
//!
//! The cost per request is a few atomic operations: no clock read, no wake-up.

use std::cell::RefCell;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use pin_project_lite::pin_project;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::Notify;

use super::peers::Peer;
use super::shield::refusal;
use crate::AuthBody;

/// The deadlines a [`watchdog`] enforces.
#[derive(Clone, Copy, Debug)]
pub struct Deadlines {
    /// First byte, and a whole request head once its first byte arrived.
    pub header: Duration,
    /// Between requests on a keep-alive connection.
    pub idle: Duration,
    /// One request, from its head to its answer.
    pub request: Duration,
}

/// What the IO, the service and the watchdog of one connection share. The IO and the service
/// only count and flag (no clock, no wake-up per request); the watchdog reads the clock when it
/// wakes and notices changes then, so each deadline holds within one wake-up interval.
#[derive(Debug)]
pub struct ConnState {
    start: Instant,
    started: AtomicU64,
    done: AtomicU64,
    /// Bytes arrived while no request ran (a request head, or a trickle of one).
    read: AtomicBool,
    /// Bytes arrived at all.
    any_read: AtomicBool,
    /// An HTTP/2 connection: frames after an answer (PING, SETTINGS ACK, WINDOW_UPDATE) are
    /// not a request head.
    h2: AtomicBool,
}

impl ConnState {
    /// A new connection, accepted now.
    pub fn new() -> Arc<Self> {
        Arc::new(ConnState {
            start: Instant::now(),
            started: AtomicU64::new(0),
            done: AtomicU64::new(0),
            read: AtomicBool::new(false),
            any_read: AtomicBool::new(false),
            h2: AtomicBool::new(false),
        })
    }

    fn on_read(&self, bytes: &[u8]) {
        if !self.any_read.swap(true, Ordering::Relaxed) && bytes.starts_with(b"PRI ") {
            self.h2.store(true, Ordering::Relaxed);
        }
        if self.h2.load(Ordering::Relaxed) && self.done.load(Ordering::Relaxed) != 0 {
            return;
        }
        if !self.read.load(Ordering::Relaxed) && self.in_flight() == 0 {
            self.read.store(true, Ordering::Relaxed);
        }
    }

    fn on_start(&self) {
        self.started.fetch_add(1, Ordering::AcqRel);
    }

    fn on_done(&self) {
        let done = self.done.fetch_add(1, Ordering::AcqRel) + 1;
        if done == self.started.load(Ordering::Acquire) {
            self.read.store(false, Ordering::Relaxed);
        }
    }

    fn in_flight(&self) -> u64 {
        let done = self.done.load(Ordering::Acquire);
        self.started.load(Ordering::Acquire).saturating_sub(done)
    }

    /// Idle and safe to close: no request running or arriving, and either it has answered one
    /// (keep-alive) or it has been silent for a while (a new connection's request may already
    /// be in the socket, unread).
    fn evictable(&self) -> bool {
        self.in_flight() == 0
            && !self.read.load(Ordering::Relaxed)
            && (self.done.load(Ordering::Relaxed) != 0
                || (!self.any_read.load(Ordering::Relaxed)
                    && self.start.elapsed() > Duration::from_millis(500)))
    }
}

/// Raised while the server is at its connection cap and a new connection waits: one idle
/// connection closes itself to make room (not all of them).
#[derive(Debug, Default)]
pub struct Pressure {
    wanted: AtomicUsize,
    changed: Notify,
}

impl Pressure {
    /// Asks one idle connection to close.
    pub fn raise(&self) {
        self.wanted.store(1, Ordering::Release);
        self.changed.notify_waiters();
    }

    /// Room was made.
    pub fn lower(&self) {
        self.wanted.store(0, Ordering::Release);
    }

    /// Takes the one eviction asked for, if it is still open.
    fn claim(&self) -> bool {
        self.wanted
            .compare_exchange(1, 0, Ordering::AcqRel, Ordering::Relaxed)
            .is_ok()
    }

    fn is_on(&self) -> bool {
        self.wanted.load(Ordering::Acquire) != 0
    }
}

/// Why a watchdog closed its connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Closed {
    /// No byte, or no complete request head, in time.
    HeaderTimeout,
    /// Idle between requests for too long.
    IdleTimeout,
    /// One request took too long.
    RequestTimeout,
    /// Idle while the server was at its connection cap.
    Evicted,
}

/// Completes when the connection described by `state` must be closed.
pub async fn watchdog(state: &ConnState, limits: Deadlines, pressure: &Pressure) -> Closed {
    #[derive(PartialEq)]
    enum Phase {
        Idle,
        Head,
        Busy,
    }
    // Wakes at least this often, so that a phase change is noticed within it.
    let tick = limits
        .header
        .min(limits.idle)
        .max(Duration::from_millis(10));
    let sleep = tokio::time::sleep(Duration::ZERO);
    tokio::pin!(sleep);
    let mut phase = Phase::Idle;
    let mut since = tokio::time::Instant::from_std(state.start);
    let mut seen = (0, 0);
    loop {
        // Registered before the check, so a raise between the two is not missed.
        let raised = pressure.changed.notified();
        if pressure.is_on() && state.evictable() && pressure.claim() {
            return Closed::Evicted;
        }
        let now = tokio::time::Instant::now();
        let counts = (
            state.started.load(Ordering::Acquire),
            state.done.load(Ordering::Acquire),
        );
        let next = if counts.0 > counts.1 {
            Phase::Busy
        } else if state.read.load(Ordering::Relaxed) {
            Phase::Head
        } else {
            Phase::Idle
        };
        // A new phase, or progress within one (a request started or answered), restarts the
        // clock: a busy connection is timed by its progress, not by its oldest request.
        if next != phase || counts != seen {
            if !(next == Phase::Idle && phase == Phase::Idle && counts == (0, 0)) {
                since = now;
            }
            phase = next;
            seen = counts;
        }
        let (limit, why) = match phase {
            Phase::Busy => (limits.request, Closed::RequestTimeout),
            Phase::Head => (limits.header, Closed::HeaderTimeout),
            Phase::Idle if counts.1 == 0 => (limits.header, Closed::HeaderTimeout),
            Phase::Idle => (limits.idle, Closed::IdleTimeout),
        };
        let deadline = since + limit;
        if now >= deadline {
            return why;
        }
        let mut wake = deadline.min(now + tick);
        // Under pressure a silent new connection becomes evictable at 500 ms: look again then.
        if pressure.is_on() && !state.any_read.load(Ordering::Relaxed) {
            wake =
                wake.min(tokio::time::Instant::from_std(state.start) + Duration::from_millis(502));
        }
        sleep
            .as_mut()
            .reset(wake.max(now + Duration::from_millis(1)));
        tokio::select! {
            () = &mut sleep => {}
            () = raised => {}
        }
    }
}

pin_project! {
    /// A connection's IO, noting when bytes arrive.
    #[derive(Debug)]
    pub struct Watched<T> {
        #[pin]
        inner: T,
        state: Arc<ConnState>,
    }
}

impl<T> Watched<T> {
    /// Watches `inner` for `state`.
    pub fn new(inner: T, state: Arc<ConnState>) -> Self {
        Watched { inner, state }
    }
}

impl<T: AsyncRead> AsyncRead for Watched<T> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.project();
        let before = buf.filled().len();
        let res = this.inner.poll_read(cx, buf);
        if buf.filled().len() > before {
            this.state.on_read(&buf.filled()[before..]);
        }
        res
    }
}

impl<T: AsyncWrite> AsyncWrite for Watched<T> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.project().inner.poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.project().inner.poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.project().inner.poll_shutdown(cx)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        self.project().inner.poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}

/// A connection's service: counts requests in flight and tells handlers who the peer is.
///
/// It is hyper's service, not tower's, and holds the app itself rather than a clone per
/// request: hyper-util's `TowerToHyperService` clones the whole stack for every request (each
/// `Arc` in it incremented and decremented again, on cache lines every worker writes) and
/// drives it through a `Oneshot`. The stack is called in place instead, after a readiness
/// check; each connection owns its own clone, made once when it is accepted. So on HTTP/2 the
/// synchronous part of a call (all of a cache hit's decision) runs on the connection's task,
/// not on the stream's: a few microseconds per request, serialised per connection.
#[derive(Debug)]
pub struct Tracked<S> {
    inner: RefCell<S>,
    state: Arc<ConnState>,
    peer: Peer,
}

impl<S> Tracked<S> {
    /// Tracks `inner` for the connection `state` from `peer`.
    pub fn new(inner: S, state: Arc<ConnState>, peer: Peer) -> Self {
        Tracked {
            inner: RefCell::new(inner),
            state,
            peer,
        }
    }
}

impl<S, B, ResBody> hyper::service::Service<http::Request<B>> for Tracked<S>
where
    S: tower_service::Service<http::Request<B>, Response = http::Response<AuthBody<ResBody>>>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = TrackedFuture<S::Future, ResBody, S::Error>;

    fn call(&self, mut req: http::Request<B>) -> Self::Future {
        // Counted before anything can refuse it, so that every request, answered or refused,
        // ends the connection's busy phase when it completes.
        self.state.on_start();
        let guard = Running(self.state.clone());
        // hyper never calls a service from inside its own call, so the cell is always free;
        // should that change, the request is refused rather than the connection's task panicking.
        let Ok(mut inner) = self.inner.try_borrow_mut() else {
            return TrackedFuture::unready(guard);
        };
        // The sidecar's stack is always ready (no layer in it waits for capacity: the load
        // shedder refuses in `call`); a service that is not is refused, not waited for.
        match inner.poll_ready(&mut Context::from_waker(Waker::noop())) {
            Poll::Ready(Ok(())) => {}
            Poll::Ready(Err(e)) => return TrackedFuture::done(Err(e), guard),
            Poll::Pending => return TrackedFuture::unready(guard),
        }
        req.extensions_mut().insert(self.peer);
        TrackedFuture {
            kind: Kind::Running {
                inner: inner.call(req),
            },
            _guard: guard,
        }
    }
}

/// Marks a request done when its future is dropped (hyper drops it once it has answered).
#[derive(Debug)]
struct Running(Arc<ConnState>);

impl Drop for Running {
    fn drop(&mut self) {
        self.0.on_done();
    }
}

pin_project! {
    /// The future of [`Tracked`].
    #[derive(Debug)]
    pub struct TrackedFuture<F, ResBody, E> {
        #[pin]
        kind: Kind<F, ResBody, E>,
        _guard: Running,
    }
}

pin_project! {
    #[project = KindProj]
    #[derive(Debug)]
    enum Kind<F, ResBody, E> {
        Running { #[pin] inner: F },
        Done { out: Option<Result<http::Response<AuthBody<ResBody>>, E>> },
    }
}

impl<F, ResBody, E> TrackedFuture<F, ResBody, E> {
    fn done(out: Result<http::Response<AuthBody<ResBody>>, E>, guard: Running) -> Self {
        TrackedFuture {
            kind: Kind::Done { out: Some(out) },
            _guard: guard,
        }
    }

    fn unready(guard: Running) -> Self {
        let res = refusal(
            http::StatusCode::SERVICE_UNAVAILABLE,
            r#"{"error":"unavailable"}"#,
        );
        Self::done(Ok(res), guard)
    }
}

impl<F, ResBody, E> Future for TrackedFuture<F, ResBody, E>
where
    F: Future<Output = Result<http::Response<AuthBody<ResBody>>, E>>,
{
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.project().kind.project() {
            KindProj::Running { inner } => inner.poll(cx),
            // Polled again after completing: never ready again, as `Shield`'s future.
            KindProj::Done { out } => out.take().map_or(Poll::Pending, Poll::Ready),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::convert::Infallible;
    use std::future::{Ready, ready};

    use hyper::service::Service as _;

    use super::*;

    /// Answers with the peer it was told about; ready only when `ready` says so; counts how
    /// often it was polled for readiness and called.
    #[derive(Clone, Default)]
    struct Echo {
        ready: bool,
        polls: Arc<AtomicUsize>,
        calls: Arc<AtomicUsize>,
    }

    impl tower_service::Service<http::Request<()>> for Echo {
        type Response = http::Response<AuthBody<()>>;
        type Error = Infallible;
        type Future = Ready<Result<Self::Response, Infallible>>;

        fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
            self.polls.fetch_add(1, Ordering::Relaxed);
            if self.ready {
                Poll::Ready(Ok(()))
            } else {
                Poll::Pending
            }
        }

        fn call(&mut self, req: http::Request<()>) -> Self::Future {
            self.calls.fetch_add(1, Ordering::Relaxed);
            let peer = req.extensions().get::<Peer>().map(|p| p.addr.port());
            let mut res = http::Response::new(AuthBody::from("called"));
            res.headers_mut()
                .insert("x-peer-port", http::HeaderValue::from(peer.unwrap_or(0)));
            ready(Ok(res))
        }
    }

    fn tracked(echo: &Echo) -> (Tracked<Echo>, Arc<ConnState>) {
        let state = ConnState::new();
        let peer = Peer::new("127.0.0.1:4242".parse().unwrap());
        (Tracked::new(echo.clone(), state.clone(), peer), state)
    }

    #[tokio::test]
    async fn a_ready_service_is_readied_and_called_for_each_request_with_the_peer() {
        let echo = Echo {
            ready: true,
            ..Echo::default()
        };
        let (svc, state) = tracked(&echo);
        let first = svc.call(http::Request::new(()));
        let second = svc.call(http::Request::new(()));
        assert_eq!(state.in_flight(), 2, "both calls are running");
        assert_eq!(
            echo.polls.load(Ordering::Relaxed),
            2,
            "readied before each call"
        );
        assert_eq!(echo.calls.load(Ordering::Relaxed), 2);
        let res = first.await.unwrap();
        assert_eq!(res.status(), http::StatusCode::OK);
        assert_eq!(res.headers()["x-peer-port"], "4242");
        assert_eq!(state.in_flight(), 1);
        drop(second);
        assert_eq!(state.in_flight(), 0, "a dropped request is done too");
    }

    #[tokio::test]
    async fn an_unready_service_is_refused_not_called_and_the_connection_goes_idle() {
        let echo = Echo::default();
        let (svc, state) = tracked(&echo);
        state.on_read(b"GET / HTTP/1.1\r\n");
        assert!(
            state.read.load(Ordering::Relaxed),
            "a request head is arriving"
        );
        let res = svc.call(http::Request::new(())).await.unwrap();
        assert_eq!(res.status(), http::StatusCode::SERVICE_UNAVAILABLE);
        assert!(res.headers().get("x-peer-port").is_none());
        assert_eq!(echo.calls.load(Ordering::Relaxed), 0, "never called");
        assert_eq!(state.in_flight(), 0);
        // Else the watchdog would keep timing a head that was answered long ago.
        assert!(
            !state.read.load(Ordering::Relaxed),
            "the refused request is done"
        );
        assert!(
            state.evictable(),
            "idle after its answer, like any keep-alive connection"
        );
    }
}
