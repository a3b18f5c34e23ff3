//! Serving a router with the limits `axum::serve` lacks: a header read timeout (slow clients
//! cannot pin connections), a cap on the request head, and graceful shutdown that drains
//! requests in flight.

use std::future::Future;
use std::time::Duration;

use axum::Router;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto::Builder;
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;

/// Connection limits.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    /// Time to receive the request head.
    pub header_read_timeout: Duration,
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
            max_header_bytes: 16 * 1024,
            drain_timeout: Duration::from_secs(10),
            max_concurrent: 1024,
        }
    }
}

/// 503 for requests over the concurrency limit; 500 for a panic (never a crash, never a pass).
async fn overloaded(
    err: tower::BoxError,
) -> (
    http::StatusCode,
    [(http::header::HeaderName, &'static str); 1],
    &'static str,
) {
    let ct = (http::header::CONTENT_TYPE, "application/json");
    if err.is::<tower::load_shed::error::Overloaded>() {
        (
            http::StatusCode::SERVICE_UNAVAILABLE,
            [ct],
            r#"{"error":"overloaded"}"#,
        )
    } else {
        (
            http::StatusCode::INTERNAL_SERVER_ERROR,
            [ct],
            r#"{"error":"internal error"}"#,
        )
    }
}

/// Serves `router` on `listener` until `shutdown` completes, then drains. Requests beyond
/// `limits.max_concurrent` are shed with 503, and a panic in a handler becomes a 500.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    limits: Limits,
    shutdown: impl Future<Output = ()>,
) {
    use tower::ServiceBuilder;
    let service = ServiceBuilder::new()
        .layer(axum::error_handling::HandleErrorLayer::new(overloaded))
        .load_shed()
        .concurrency_limit(limits.max_concurrent.max(1))
        .layer(tower_http::catch_panic::CatchPanicLayer::new())
        .service(router);
    let mut builder = Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout)
        .max_buf_size(limits.max_header_bytes.max(8192))
        .max_headers(100);
    builder
        .http2()
        .timer(TokioTimer::new())
        .max_header_list_size(limits.max_header_bytes as u32);
    let graceful = GracefulShutdown::new();
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let (stream, _) = match accepted {
                    Ok(c) => c,
                    Err(e) => {
                        // Out of file descriptors and the like: back off instead of spinning.
                        tracing::warn!(error = %e, "accept failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                };
                let _ = stream.set_nodelay(true);
                let service = TowerToHyperService::new(service.clone());
                let conn = builder.serve_connection_with_upgrades(TokioIo::new(stream), service);
                let conn = graceful.watch(conn.into_owned());
                tokio::spawn(async move {
                    let _ = conn.await;
                });
            }
            () = &mut shutdown => break,
        }
    }
    drop(listener);
    tokio::select! {
        () = graceful.shutdown() => tracing::info!(event_name = "shutdown.drained", "all connections closed"),
        () = tokio::time::sleep(limits.drain_timeout) => tracing::warn!(event_name = "shutdown.timeout", "connections still open after the drain timeout"),
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
