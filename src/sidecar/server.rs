//! Serving a router with the limits `axum::serve` lacks: deadlines for every connection
//! (first byte, request head, idle keep-alive, one request; see [`super::conn`]), a cap on open
//! connections, a cap on the request head, load shedding, and graceful shutdown that drains
//! requests in flight.

use std::convert::Infallible;
use std::future::Future;
use std::pin::pin;
use std::sync::Arc;
use std::task::Poll;
use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response};
use http_body::Body;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto::Builder;
use tokio::net::TcpListener;
use tokio::sync::{Semaphore, watch};
use tower_service::Service;

use super::conn::{ConnState, Deadlines, Pressure, Tracked, Watched, watchdog};
use super::peers::Peer;
use super::shield::Shield;
use super::woken::OnWake;

/// Connection limits.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    /// Time to receive the first byte of a connection, and a whole request head once its first
    /// byte arrived (the HTTP/2 preface included).
    pub header_read_timeout: Duration,
    /// Time a keep-alive connection may sit idle between requests.
    pub idle_timeout: Duration,
    /// Time one request may take from its head to its answer.
    pub request_timeout: Duration,
    /// Open connections at most; at the cap, idle ones are closed and new ones wait.
    pub max_connections: usize,
    /// Maximum size of the request head in bytes (larger gets 431).
    pub max_header_bytes: usize,
    /// How long to wait for requests in flight at shutdown.
    pub drain_timeout: Duration,
    /// Requests handled at once; more are refused at once with 503 instead of queueing.
    pub max_concurrent: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            header_read_timeout: Duration::from_secs(10),
            // Longer than nginx's and Caddy's upstream keep-alive (60 s and 2 min idle, but both
            // retry a request on a reused connection that the server just closed).
            idle_timeout: Duration::from_secs(60),
            request_timeout: Duration::from_secs(30),
            max_connections: 10_000,
            max_header_bytes: 16 * 1024,
            drain_timeout: Duration::from_secs(10),
            max_concurrent: 1024,
        }
    }
}

/// How [`serve`] ended after its shutdown signal.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Drain {
    /// Every connection closed within [`Limits::drain_timeout`].
    Closed,
    /// Connections were still open after [`Limits::drain_timeout`]; they were dropped.
    TimedOut,
}

/// Serves `service` (usually the [`router::app`](super::router::app)) on `listener` until
/// `shutdown` completes, then drains and says how that went. It logs nothing about the drain:
/// a process with several listeners (the sidecar's metrics) logs one line for all of them. Requests beyond `limits.max_concurrent` are shed with
/// 503, and a panic in a handler becomes a 500 (see [`Shield`]). Each request carries the
/// connection's [`Peer`]. `service` is readied before every call and must be ready at once:
/// a request it is not ready for is answered 503, not queued (see [`Tracked`]).
pub async fn serve<S, B>(
    listener: TcpListener,
    service: S,
    limits: Limits,
    shutdown: impl Future<Output = ()>,
) -> Drain
where
    S: Service<Request<Incoming>, Response = Response<B>, Error = Infallible>
        + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
    B: Body<Data = Bytes> + Send + 'static,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let service = Shield::new(service, limits.max_concurrent);
    let mut builder = Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        // The watchdog enforces the head deadline for both protocols; hyper's own timer would
        // also cut idle keep-alive connections at the head deadline.
        .header_read_timeout(None)
        // hyper's default cap of 100 headers stays: setting it, even to 100, makes hyper
        // allocate and fill its header index arrays on every request (~1 700 instructions).
        .max_buf_size(limits.max_header_bytes.max(8192));
    builder
        .http2()
        .timer(TokioTimer::new())
        .max_header_list_size(limits.max_header_bytes as u32);
    let deadlines = Deadlines {
        header: limits.header_read_timeout,
        idle: limits.idle_timeout,
        request: limits.request_timeout,
    };
    let slots = Arc::new(Semaphore::new(limits.max_connections.max(1)));
    let pressure = Arc::new(Pressure::default());
    // Sent at shutdown; every connection holds a receiver, so `closed` means all have ended.
    let (stop, _) = watch::channel(());
    tokio::pin!(shutdown);
    loop {
        let (stream, addr) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(c) => c,
                Err(e) => {
                    // Out of file descriptors and the like: back off instead of spinning.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let permit = match slots.clone().try_acquire_owned() {
            Ok(p) => p,
            Err(_) => {
                // At the cap with someone waiting: idle connections make room, busy ones
                // finish first.
                pressure.raise();
                let p = tokio::select! {
                    p = slots.clone().acquire_owned() => p,
                    () = &mut shutdown => break,
                };
                pressure.lower();
                match p {
                    Ok(p) => p,
                    Err(_) => break,
                }
            }
        };
        let _ = stream.set_nodelay(true);
        let state = ConnState::new();
        let peer = Peer::new(addr);
        let service = Tracked::new(service.clone(), state.clone(), peer);
        let io = TokioIo::new(Watched::new(stream, state.clone()));
        let conn = builder.serve_connection_with_upgrades(io, service);
        let conn = conn.into_owned();
        let pressure = pressure.clone();
        let mut stopping = stop.subscribe();
        tokio::spawn(async move {
            let _permit = permit;
            let mut conn = pin!(conn);
            // The shutdown signal and the watchdog are polled only when they woke, not on
            // every wake-up of the connection (see `OnWake`).
            let mut stopping = pin!(OnWake::new(async move {
                // An error is a dropped sender: `serve` itself is gone, stop as well.
                let _ = stopping.changed().await;
                stopping
            }));
            let mut draining = None;
            let mut dog = pin!(OnWake::new(watchdog(&state, deadlines, &pressure)));
            std::future::poll_fn(|cx| {
                if draining.is_none()
                    && let Poll::Ready(rx) = stopping.as_mut().poll(cx)
                {
                    // Held until the connection ends: `serve`'s drain waits for it.
                    draining = Some(rx);
                    conn.as_mut().graceful_shutdown();
                }
                if let Poll::Ready(why) = dog.as_mut().poll(cx) {
                    tracing::debug!(event_name = "connection.closed", reason = ?why, peer = %peer.addr);
                    return Poll::Ready(());
                }
                conn.as_mut().poll(cx).map(|_| ())
            })
            .await;
        });
    }
    drop(listener);
    tokio::select! {
        () = async {
            let _ = stop.send(());
            stop.closed().await;
        } => Drain::Closed,
        () = tokio::time::sleep(limits.drain_timeout) => Drain::TimedOut,
    }
}

/// Raises the soft open-file limit to the hard one and returns the connection cap that fits
/// in it (`wanted`, or fewer with room kept for listeners, logs and outbound calls).
pub fn fit_connections(wanted: usize) -> usize {
    const RESERVED: u64 = 256;
    let soft = match rlimit::increase_nofile_limit(u64::MAX) {
        Ok(n) => {
            tracing::info!(
                event_name = "startup.nofile",
                limit = n,
                "open-file limit raised to the hard limit"
            );
            n
        }
        Err(e) => {
            let n = rlimit::getrlimit(rlimit::Resource::NOFILE).map_or(1024, |(s, _)| s);
            tracing::warn!(event_name = "startup.nofile", limit = n, error = %e, "cannot raise the open-file limit");
            n
        }
    };
    let fits = soft.saturating_sub(RESERVED).max(16);
    if (wanted as u64) > fits {
        tracing::warn!(
            event_name = "startup.max_connections",
            wanted,
            used = fits,
            "server.max_connections lowered to fit the open-file limit"
        );
        fits as usize
    } else {
        wanted
    }
}

/// Completes on SIGTERM or SIGINT.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
    tracing::info!(event_name = "shutdown.signal", "shutting down");
}
