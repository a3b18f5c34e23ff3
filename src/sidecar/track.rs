//! HTTP request metrics (`authotron_http_*`) as a plain tower layer: no boxed future per
//! request, unlike `axum::middleware::from_fn`.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, ready};
use std::time::Instant;

use axum::extract::MatchedPath;
use http::{Method, Request, Response};
use pin_project_lite::pin_project;
use tower_layer::Layer;
use tower_service::Service;

use super::metrics::Metrics;

/// Records count, duration and in-flight requests by route and method.
#[derive(Clone, Debug)]
#[must_use]
pub struct TrackLayer {
    metrics: Metrics,
}

impl TrackLayer {
    /// Records into `metrics`.
    pub fn new(metrics: Metrics) -> Self {
        TrackLayer { metrics }
    }
}

impl<S> Layer<S> for TrackLayer {
    type Service = Track<S>;
    fn layer(&self, inner: S) -> Track<S> {
        Track {
            inner,
            metrics: self.metrics.clone(),
        }
    }
}

/// The service of [`TrackLayer`].
#[derive(Clone, Debug)]
#[must_use]
pub struct Track<S> {
    inner: S,
    metrics: Metrics,
}

fn method_label(m: &Method) -> &'static str {
    match *m {
        Method::GET => "GET",
        Method::HEAD => "HEAD",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::DELETE => "DELETE",
        Method::PATCH => "PATCH",
        Method::OPTIONS => "OPTIONS",
        _ => "other",
    }
}

/// Decrements the in-flight gauge even when the request future is dropped.
struct InFlight(prometheus::IntGauge);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.dec();
    }
}

pin_project! {
    /// Response future of [`Track`].
    pub struct TrackFuture<F> {
        #[pin]
        inner: F,
        metrics: Metrics,
        route: Option<MatchedPath>,
        method: &'static str,
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
        let method = method_label(req.method());
        let route = req.extensions().get::<MatchedPath>().cloned();
        let gauge = self.metrics.in_flight.with_label_values(&[method]);
        gauge.inc();
        TrackFuture {
            inner: self.inner.call(req),
            metrics: self.metrics.clone(),
            route,
            method,
            start: Instant::now(),
            in_flight: InFlight(gauge),
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
        let route = this.route.as_ref().map_or("unmatched", MatchedPath::as_str);
        this.metrics
            .http_duration
            .with_label_values(&[route, this.method])
            .observe(this.start.elapsed().as_secs_f64());
        if let Ok(res) = &out {
            this.metrics
                .http_requests
                .with_label_values(&[route, this.method, res.status().as_str()])
                .inc();
        }
        Poll::Ready(out)
    }
}
