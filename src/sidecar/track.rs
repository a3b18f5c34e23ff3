//! HTTP request metrics (`authotron_http_*`) as a plain tower layer around the whole app: no
//! boxed future per request, and no label lookup either. The route label is the request path
//! when it is one of the app's routes (each has a fixed path), else `unmatched`, as axum's
//! `MatchedPath` would give; the metric handles of each route, method and status are resolved
//! on first use and kept, so a request costs a few atomic operations instead of three hashed
//! label lookups. Handles are created on first use, as `with_label_values` would create them,
//! so the exposition shows the same series.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll, ready};
use std::time::Instant;

use http::{Method, Request, Response};
use pin_project_lite::pin_project;
use prometheus::{Histogram, IntCounter, IntGauge};
use tower_layer::Layer;
use tower_service::Service;

use super::metrics::Metrics;

/// The method labels; the index of a method is its position, `other` last.
const METHODS: [&str; 8] = [
    "GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "other",
];
/// Statuses whose counters are kept per route and method; others are looked up per request.
const STATUSES: [u16; 8] = [200, 400, 401, 403, 404, 405, 500, 503];
const UNMATCHED: &str = "unmatched";

#[derive(Default)]
struct Slot {
    duration: OnceLock<Histogram>,
    requests: [OnceLock<IntCounter>; STATUSES.len()],
}

/// The handles of every route and method, resolved on first use.
struct Handles {
    metrics: Metrics,
    /// The app's routes; index `routes.len()` is `unmatched`.
    routes: Vec<&'static str>,
    /// `(routes.len() + 1) * METHODS.len()` slots, route-major.
    slots: Vec<Slot>,
    in_flight: [OnceLock<IntGauge>; METHODS.len()],
}

impl std::fmt::Debug for Handles {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Handles")
            .field("routes", &self.routes)
            .finish_non_exhaustive()
    }
}

impl Handles {
    fn route(&self, path: &str) -> usize {
        self.routes
            .iter()
            .position(|r| *r == path)
            .unwrap_or(self.routes.len())
    }

    fn route_name(&self, route: usize) -> &'static str {
        self.routes.get(route).copied().unwrap_or(UNMATCHED)
    }

    fn in_flight(&self, method: usize) -> &IntGauge {
        self.in_flight[method]
            .get_or_init(|| self.metrics.in_flight.with_label_values(&[METHODS[method]]))
    }

    fn record(&self, route: usize, method: usize, status: Option<http::StatusCode>, secs: f64) {
        let slot = &self.slots[route * METHODS.len() + method];
        let labels = [self.route_name(route), METHODS[method]];
        slot.duration
            .get_or_init(|| self.metrics.http_duration.with_label_values(&labels))
            .observe(secs);
        let Some(status) = status else { return };
        let code = status.as_str();
        match STATUSES.iter().position(|s| *s == status.as_u16()) {
            Some(i) => slot.requests[i]
                .get_or_init(|| {
                    self.metrics
                        .http_requests
                        .with_label_values(&[labels[0], labels[1], code])
                })
                .inc(),
            None => self
                .metrics
                .http_requests
                .with_label_values(&[labels[0], labels[1], code])
                .inc(),
        }
    }
}

/// Records count, duration and in-flight requests by route and method.
#[derive(Clone, Debug)]
#[must_use]
pub struct TrackLayer {
    handles: Arc<Handles>,
}

impl TrackLayer {
    /// Records into `metrics`, with the label of each of `routes` (fixed paths) for requests
    /// to it and `unmatched` for any other path.
    pub fn new(metrics: Metrics, routes: &[&'static str]) -> Self {
        TrackLayer {
            handles: Arc::new(Handles {
                metrics,
                routes: routes.to_vec(),
                slots: (0..(routes.len() + 1) * METHODS.len())
                    .map(|_| Slot::default())
                    .collect(),
                in_flight: Default::default(),
            }),
        }
    }
}

impl<S> Layer<S> for TrackLayer {
    type Service = Track<S>;
    fn layer(&self, inner: S) -> Track<S> {
        Track {
            inner,
            handles: self.handles.clone(),
        }
    }
}

/// The service of [`TrackLayer`].
#[derive(Clone, Debug)]
#[must_use]
pub struct Track<S> {
    inner: S,
    handles: Arc<Handles>,
}

fn method_index(m: &Method) -> usize {
    match *m {
        Method::GET => 0,
        Method::HEAD => 1,
        Method::POST => 2,
        Method::PUT => 3,
        Method::DELETE => 4,
        Method::PATCH => 5,
        Method::OPTIONS => 6,
        _ => 7,
    }
}

/// Decrements the in-flight gauge of a method even when the request future is dropped.
struct InFlight {
    handles: Arc<Handles>,
    method: usize,
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.handles.in_flight(self.method).dec();
    }
}

pin_project! {
    /// Response future of [`Track`].
    pub struct TrackFuture<F> {
        #[pin]
        inner: F,
        route: usize,
        start: Instant,
        in_flight: InFlight,
    }
}

impl<S, B, ResBody> Service<Request<B>> for Track<S>
where
    S: Service<Request<B>, Response = Response<ResBody>>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = TrackFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<B>) -> Self::Future {
        let method = method_index(req.method());
        let route = self.handles.route(req.uri().path());
        self.handles.in_flight(method).inc();
        TrackFuture {
            inner: self.inner.call(req),
            route,
            start: Instant::now(),
            in_flight: InFlight {
                handles: self.handles.clone(),
                method,
            },
        }
    }
}

impl<F, ResBody, E> Future for TrackFuture<F>
where
    F: Future<Output = Result<Response<ResBody>, E>>,
{
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let out = ready!(this.inner.poll(cx));
        let status = out.as_ref().ok().map(Response::status);
        let secs = this.start.elapsed().as_secs_f64();
        let InFlight { handles, method } = &*this.in_flight;
        handles.record(*this.route, *method, status, secs);
        Poll::Ready(out)
    }
}
