//! The sidecar's HTTP routes: `/authenticate` (any method), `/whoami`, `/providers`,
//! `/augmenters`, `/health`, `/ready`, `/.well-known/jwks.json`, and the metrics router.
//!
//! `/authenticate` is the hot path and does not go through axum's router: [`Dispatch`] sends
//! it straight to the trust gate, the auth layer and the decision, which saves the routing
//! table, the URL-parameter and matched-path extensions and a boxed route clone and future
//! per decision (about 2 500 instructions). Every other path goes to an axum [`Router`].

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};

use axum::Router;
use axum::body::Body;
use axum::extract::State;
use axum::http::header::{AUTHORIZATION, CACHE_CONTROL, CONTENT_TYPE};
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use bytes::Bytes;
use http::Request;
use pin_project_lite::pin_project;
use tower_service::Service;

use super::config::{Built, Config};
use super::metrics::Metrics;
use super::peers::{GateFuture, TrustGate};
use super::rules::Rules;
use super::track::{Track, TrackLayer};
use crate::AuthBody;
use crate::auth::{Auth, ResponseFuture};
use crate::error::AuthError;
use crate::mint::MintedToken;
use crate::reject::{Reject, Rejection};
use crate::{AuthLayer, Principal};

const X_AUTH_USERNAME: HeaderName = HeaderName::from_static("x-auth-username");
const X_AUTH_REALM: HeaderName = HeaderName::from_static("x-auth-realm");
const X_AUTH_ROLES: HeaderName = HeaderName::from_static("x-auth-roles");

struct AppState {
    rules: Rules,
    legacy_headers: bool,
    metrics: Metrics,
    providers: serde_json::Value,
    augmenters: serde_json::Value,
    jwks: Option<serde_json::Value>,
    auth: crate::Authenticator,
}

type Shared = Arc<AppState>;

fn result_label(error: &AuthError) -> &'static str {
    match error {
        AuthError::Missing => "no_auth_header",
        AuthError::Malformed(_) => "invalid_header",
        AuthError::Invalid => "all_failed",
        AuthError::Unavailable => "unavailable",
        AuthError::Forbidden(_) => "forbidden",
        // Not raised by the sidecar's own routes (its layer runs before every guard).
        AuthError::NoAuthLayer => "error",
    }
}

fn json(value: &serde_json::Value) -> Response {
    ([(CONTENT_TYPE, "application/json")], value.to_string()).into_response()
}

/// The decision for a request the layer authenticated. A plain function behind [`Decide`],
/// not an axum handler: no extractor machinery, no boxed future and no boxed body per decision.
fn authenticate<B>(state: &AppState, req: &Request<B>) -> http::Response<AuthBody<Body>> {
    let (Some(principal), Some(token)) = (
        req.extensions().get::<Principal>(),
        req.extensions().get::<MintedToken>(),
    ) else {
        // The layer always inserts both; fail closed if it ever does not.
        let mut res = http::Response::new(AuthBody::from("authentication unavailable"));
        *res.status_mut() = StatusCode::SERVICE_UNAVAILABLE;
        return res;
    };
    let decision = state.rules.decide(req.headers(), req.method(), principal);
    let target = decision.target.unwrap_or("-");
    if let Some(denial) = &decision.denial {
        let error = AuthError::Forbidden(denial.forbidden());
        state
            .metrics
            .auth_requests
            .with_label_values(&["forbidden", &principal.realm])
            .inc();
        tracing::info!(
            target: "auth_o_tron::audit",
            event_name = "auth.decision", result = "forbidden", status = 403u16,
            user = %principal.username, realm = %principal.realm, provider = principal.provider(),
            method = %decision.method, path = target, host = decision.host.unwrap_or("-"), reason = denial.reason(),
        );
        let challenge = state.auth.challenges().for_error(&error);
        return Rejection {
            error: &error,
            challenge,
            grpc: false,
        }
        .default_response()
        .map(AuthBody::rejection);
    }
    state.metrics.count_success(&principal.realm);
    tracing::info!(
        target: "auth_o_tron::audit",
        event_name = "auth.decision", result = "success", status = 200u16,
        user = %principal.username, realm = %principal.realm, provider = principal.provider(),
        method = %decision.method, path = target, host = decision.host.unwrap_or("-"),
    );
    let mut res = http::Response::new(AuthBody::from("Authenticated successfully"));
    // Sized for every header of this answer, including the ones hyper and axum add: growing a
    // `HeaderMap` mid-response costs more than the whole authentication on a cache hit.
    *res.headers_mut() = HeaderMap::with_capacity(8);
    let h = res.headers_mut();
    h.insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    h.insert(AUTHORIZATION, token.bearer_header());
    h.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    if state.legacy_headers {
        // Values that cannot be header values, and roles that would split differently in a
        // comma-joined header, are left out (with a warning), never a panic. A header left
        // out is still sent, empty: proxies that copy the auth answer's headers then overwrite
        // a client's own copy instead of passing it on.
        let empty = || HeaderValue::from_static("");
        h.insert(
            X_AUTH_USERNAME,
            principal.legacy_username_header().unwrap_or_else(empty),
        );
        h.insert(
            X_AUTH_REALM,
            principal.legacy_realm_header().unwrap_or_else(empty),
        );
        h.insert(
            X_AUTH_ROLES,
            principal.legacy_roles_header().unwrap_or_else(empty),
        );
    }
    res
}

const AUTHENTICATE: &str = "/authenticate";

/// Counts and audits every request the layer refuses.
#[derive(Clone, Debug)]
struct Audit(Metrics);

impl Reject for Audit {
    fn reject(&self, r: &Rejection<'_>) -> http::Response<Bytes> {
        self.0
            .auth_requests
            .with_label_values(&[result_label(r.error), "unknown"])
            .inc();
        tracing::info!(
            target: "auth_o_tron::audit",
            event_name = "auth.decision", result = result_label(r.error), status = r.error.status().as_u16(),
            reason = %r.error,
        );
        r.default_response()
    }
}

/// The service behind the layer on `/authenticate`: `authenticate`, answered at once.
#[derive(Clone)]
pub struct Decide(Shared);

impl std::fmt::Debug for Decide {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Decide").finish_non_exhaustive()
    }
}

impl<B> Service<Request<B>> for Decide {
    type Response = http::Response<AuthBody<Body>>;
    type Error = Infallible;
    type Future = std::future::Ready<Result<Self::Response, Infallible>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: Request<B>) -> Self::Future {
        std::future::ready(Ok(authenticate(&self.0, &req)))
    }
}

/// The response body of [`App`]: a decision's fixed text, or an axum body.
pub type AppBody = AuthBody<AuthBody<Body>>;

/// The sidecar's service, built by [`app`].
pub type App = Track<Dispatch>;

/// `/authenticate` to the decision, anything else to the axum router.
#[derive(Clone, Debug)]
pub struct Dispatch {
    decision: TrustGate<Auth<Decide, Audit>>,
    router: Router,
}

impl<B> Service<Request<B>> for Dispatch
where
    B: http_body::Body<Data = Bytes> + Send + 'static,
    B::Error: Into<axum::BoxError>,
{
    type Response = http::Response<AppBody>;
    type Error = Infallible;
    type Future = DispatchFuture<B>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        ready!(Service::<Request<B>>::poll_ready(&mut self.decision, cx))?;
        Service::<Request<B>>::poll_ready(&mut self.router, cx)
    }

    fn call(&mut self, req: Request<B>) -> Self::Future {
        if req.uri().path() == AUTHENTICATE {
            DispatchFuture {
                kind: Kind::Decision {
                    future: self.decision.call(req),
                },
            }
        } else {
            DispatchFuture {
                kind: Kind::Router {
                    future: self.router.call(req),
                },
            }
        }
    }
}

pin_project! {
    /// The future of [`Dispatch`].
    pub struct DispatchFuture<B> {
        #[pin]
        kind: Kind<B>,
    }
}

pin_project! {
    #[project = KindProj]
    enum Kind<B> {
        Decision { #[pin] future: GateFuture<ResponseFuture<Decide, B, Audit>, AppBody> },
        Router { #[pin] future: axum::routing::future::RouteFuture<Infallible> },
    }
}

impl<B> std::fmt::Debug for DispatchFuture<B> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("DispatchFuture")
    }
}

impl<B> Future for DispatchFuture<B> {
    type Output = Result<http::Response<AppBody>, Infallible>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.project().kind.project() {
            KindProj::Decision { future } => future.poll(cx),
            KindProj::Router { future } => {
                let res = ready!(future.poll(cx))?;
                Poll::Ready(Ok(res.map(|b| AuthBody::inner(AuthBody::inner(b)))))
            }
        }
    }
}

async fn whoami(principal: Principal) -> Response {
    let mut res = json(&serde_json::to_value(principal.user()).unwrap_or_default());
    res.headers_mut()
        .insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    res
}

async fn ready(State(state): State<Shared>) -> Response {
    if state.auth.providers().all(|p| p.is_ready()) {
        (StatusCode::OK, "ready").into_response()
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "not ready").into_response()
    }
}

/// The application for `config`: a tower service for any request body, answering with
/// [`AppBody`]. Serve it with [`server::serve`](super::server::serve), or mount it in an axum
/// app with `Router::fallback_service`.
pub fn app(config: &Config, built: &Built, metrics: Metrics) -> App {
    // What was built, not what the file says: the two cannot drift apart.
    let entry = |name: &str, kind: &str, realm: &str| serde_json::json!({"name": name, "type": kind, "realm": realm});
    let auth = &built.authenticator;
    let providers: Vec<_> = auth
        .providers()
        .map(|p| p.info())
        .map(|i| entry(&i.name, i.kind, &i.realm))
        .collect();
    let augmenters: Vec<_> = auth
        .augmenters()
        .map(|a| a.info())
        .map(|i| entry(&i.name, i.kind, &i.realm))
        .collect();
    let jwks = built
        .minter
        .key()
        .public_jwk()
        .map(|_| serde_json::to_value(built.minter.jwks()).unwrap_or_default());
    let state = Arc::new(AppState {
        rules: built.rules.clone(),
        legacy_headers: config.include_legacy_headers,
        metrics: metrics.clone(),
        providers: serde_json::json!({ "providers": providers }),
        augmenters: serde_json::json!({ "augmenters": augmenters }),
        jwks,
        auth: built.authenticator.clone(),
    });
    let trusted = Arc::new(built.trusted.clone());
    let layer = AuthLayer::new(built.authenticator.clone())
        .with_rejection(Audit(metrics.clone()))
        .mint(built.minter.clone());
    let decision = TrustGate::new(
        tower_layer::Layer::layer(&layer, Decide(state.clone())),
        trusted.clone(),
    );
    let mut router = Router::new()
        .route("/whoami", get(whoami))
        .route_layer(layer.clone())
        .route_layer(tower::layer::layer_fn({
            let trusted = trusted.clone();
            move |s| TrustGate::new(s, trusted.clone())
        }))
        .route(
            "/providers",
            get(|State(s): State<Shared>| async move { json(&s.providers) }),
        )
        .route(
            "/augmenters",
            get(|State(s): State<Shared>| async move { json(&s.augmenters) }),
        )
        .route("/health", get(|| async { "OK" }))
        .route("/ready", get(ready));
    let mut routes = vec![
        AUTHENTICATE,
        "/whoami",
        "/providers",
        "/augmenters",
        "/health",
        "/ready",
    ];
    if state.jwks.is_some() {
        routes.push("/.well-known/jwks.json");
        router = router.route(
            "/.well-known/jwks.json",
            get(|State(s): State<Shared>| async move {
                let mut res = json(s.jwks.as_ref().unwrap_or(&serde_json::Value::Null));
                res.headers_mut().insert(
                    CACHE_CONTROL,
                    HeaderValue::from_static("public, max-age=300"),
                );
                res
            }),
        );
    }
    if built.tokens.is_some() {
        routes.extend(["/tokens", "/tokens/openapi.json"]);
    }
    let mut router = router.with_state(state);
    if let Some(tokens) = &built.tokens {
        router = router.merge(tokens_app(tokens, built, &layer, &trusted));
        if let Some(portal) = &built.portal {
            router = router.merge(portal_app(tokens, built, portal));
        }
    }
    tower_layer::Layer::layer(
        &TrackLayer::new(metrics, &routes),
        Dispatch { decision, router },
    )
}

/// `/tokens` behind the same layer and trust gate as `/whoami`; `/tokens/openapi.json` is
/// public. The connection's peer is the audit lines' client address.
fn tokens_app<R: crate::reject::Reject + Clone + Send + Sync + 'static>(
    tokens: &super::config::BuiltTokens,
    built: &Built,
    layer: &AuthLayer<R>,
    trusted: &Arc<super::peers::TrustedProxies>,
) -> Router {
    let store: Arc<dyn crate::token::TokenStore> = tokens.store.clone();
    let api = crate::token::api::router(store, tokens.settings.clone(), &built.authenticator);
    let (trusted, forwarding) = (trusted.clone(), trusted.clone());
    let openapi = crate::token::api::openapi(&tokens.settings);
    Router::new()
        .merge(api)
        .route_layer(layer.clone())
        .route_layer(tower::layer::layer_fn(move |s| {
            TrustGate::new(s, trusted.clone())
        }))
        .route_layer(axum::middleware::map_request(move |req| {
            std::future::ready(forwarded_client(req, &forwarding))
        }))
        .route(
            "/tokens/openapi.json",
            get(move || std::future::ready(json(&openapi))),
        )
}

/// The token portal: outside the `AuthLayer` (its pages are the login), the connection's peer
/// as the client address of its rate limits and audit lines.
fn portal_app(
    tokens: &super::config::BuiltTokens,
    built: &Built,
    portal: &crate::portal::PortalSettings,
) -> Router {
    let store: Arc<dyn crate::token::TokenStore> = tokens.store.clone();
    match crate::portal::router(
        store,
        tokens.settings.clone(),
        &built.authenticator,
        portal.clone(),
    ) {
        Ok(r) => {
            let trusted = Arc::new(built.trusted.clone());
            r.layer(axum::middleware::map_request(move |req| {
                std::future::ready(forwarded_client(req, &trusted))
            }))
        }
        // `Config::build` validated the settings, and the token store keeps sessions.
        Err(e) => {
            tracing::error!(error = %e, "portal not mounted");
            Router::new()
        }
    }
}

/// The client address of the portal and the `/tokens` API (rate limits, audit lines): the connection's peer, or, when
/// the peer is a proxy (loopback, or in `server.trusted_proxies`), the right-most
/// `X-Forwarded-For` entry, which that proxy appended. Otherwise every user behind the proxy
/// would share one failed-login budget, and one attacker could lock them all out.
fn forwarded_client(
    mut req: axum::extract::Request,
    trusted: &super::peers::TrustedProxies,
) -> axum::extract::Request {
    let Some(peer) = req.extensions().get::<super::peers::Peer>().copied() else {
        return req;
    };
    let ip = peer.addr.ip().to_canonical();
    let proxy = ip.is_loopback() || (trusted.is_configured() && trusted.allows(ip));
    let forwarded = proxy
        .then(|| req.headers().get_all("x-forwarded-for").iter().next_back())
        .flatten()
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.rsplit(',').next())
        .and_then(|v| v.trim().parse::<std::net::IpAddr>().ok());
    let addr = forwarded.map_or(peer.addr, |ip| std::net::SocketAddr::new(ip, 0));
    req.extensions_mut()
        .insert(axum::extract::ConnectInfo(addr));
    req
}

/// The metrics router: `/metrics` and `/health`.
pub fn metrics_app(metrics: Metrics) -> Router {
    Router::new()
        .route(
            "/metrics",
            get(|State(m): State<Metrics>| async move {
                (
                    [(CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")],
                    m.render(),
                )
            }),
        )
        .route("/health", get(|| async { "OK" }))
        .with_state(metrics)
}
