//! Who may ask for decisions (`server.trusted_proxies`).
//!
//! The sidecar trusts the original-request headers its proxy sets; any other peer could send
//! its own. Binding to loopback is the first defence; a CIDR list of trusted proxies is the
//! second, for sidecars that must listen on a shared network. The server puts each
//! connection's [`Peer`] into its requests; decision endpoints refuse untrusted peers with 403
//! before any credential is looked at.

use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use http::{Request, Response, StatusCode};
use ipnet::IpNet;
use pin_project_lite::pin_project;

use super::error::ConfigError;

/// The peer of a connection, put into each request's extensions by the server.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Peer {
    /// The peer's address (IPv4-mapped IPv6 addresses as IPv4).
    pub addr: SocketAddr,
}

impl Peer {
    /// The peer at `addr`.
    pub fn new(addr: SocketAddr) -> Self {
        Peer {
            addr: SocketAddr::new(addr.ip().to_canonical(), addr.port()),
        }
    }
}

/// The configured trusted proxies; `None` trusts every peer.
#[derive(Clone, Debug, Default)]
pub struct TrustedProxies(Option<Vec<IpNet>>);

impl TrustedProxies {
    /// Parses `server.trusted_proxies`: CIDR blocks or bare addresses.
    pub fn parse(list: Option<&[String]>) -> Result<Self, ConfigError> {
        let Some(list) = list else {
            return Ok(TrustedProxies(None));
        };
        list.iter()
            .enumerate()
            .map(|(i, s)| {
                let s = s.trim();
                s.parse::<IpNet>()
                    .or_else(|_| s.parse::<IpAddr>().map(IpNet::from))
                    .map(|n| n.trunc())
                    .map_err(|_| {
                        ConfigError::key(
                            format!("server.trusted_proxies[{i}]"),
                            format!("{s:?} is not an address or CIDR block"),
                        )
                    })
            })
            .collect::<Result<Vec<_>, _>>()
            .map(|v| TrustedProxies(Some(v)))
    }

    /// Whether `ip` may ask for decisions.
    pub fn allows(&self, ip: IpAddr) -> bool {
        let ip = ip.to_canonical();
        self.0
            .as_ref()
            .is_none_or(|nets| nets.iter().any(|n| n.contains(&ip)))
    }

    /// Whether a list is configured.
    pub fn is_configured(&self) -> bool {
        self.0.is_some()
    }
}

/// Refuses requests from untrusted peers with 403 before the inner service sees them.
/// Requests without a [`Peer`] (an app mounting the router itself) pass.
#[derive(Clone, Debug)]
pub struct TrustGate<S> {
    inner: S,
    trusted: Arc<TrustedProxies>,
}

impl<S> TrustGate<S> {
    /// Guards `inner` with `trusted`.
    pub fn new(inner: S, trusted: Arc<TrustedProxies>) -> Self {
        TrustGate { inner, trusted }
    }
}

impl<S, B, ResBody> tower_service::Service<Request<B>> for TrustGate<S>
where
    S: tower_service::Service<Request<B>, Response = Response<ResBody>>,
    ResBody: From<&'static str>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = GateFuture<S::Future, ResBody>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<B>) -> Self::Future {
        match req.extensions().get::<Peer>() {
            Some(peer) if self.trusted.is_configured() && !self.trusted.allows(peer.addr.ip()) => {
                tracing::warn!(
                    target: "auth_o_tron::audit",
                    event_name = "auth.decision", result = "forbidden", status = 403u16,
                    reason = "peer is not a trusted proxy", peer = %peer.addr,
                );
                let mut res = Response::new(ResBody::from(r#"{"error":"untrusted peer"}"#));
                *res.status_mut() = StatusCode::FORBIDDEN;
                res.headers_mut().insert(
                    http::header::CONTENT_TYPE,
                    http::HeaderValue::from_static("application/json"),
                );
                GateFuture {
                    kind: Kind::Refused { res: Some(res) },
                }
            }
            _ => GateFuture {
                kind: Kind::Inner {
                    fut: self.inner.call(req),
                },
            },
        }
    }
}

pin_project! {
    /// The future of [`TrustGate`].
    #[derive(Debug)]
    pub struct GateFuture<F, ResBody> {
        #[pin]
        kind: Kind<F, ResBody>,
    }
}

pin_project! {
    #[project = KindProj]
    #[derive(Debug)]
    enum Kind<F, ResBody> {
        Refused { res: Option<Response<ResBody>> },
        Inner { #[pin] fut: F },
    }
}

impl<F, E, ResBody> Future for GateFuture<F, ResBody>
where
    F: Future<Output = Result<Response<ResBody>, E>>,
{
    type Output = Result<Response<ResBody>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.project().kind.project() {
            KindProj::Refused { res } => match res.take() {
                Some(res) => Poll::Ready(Ok(res)),
                None => Poll::Pending,
            },
            KindProj::Inner { fut } => fut.poll(cx),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cidr_lists_match_v4_v6_and_mapped_addresses() {
        let t = TrustedProxies::parse(Some(&[
            "127.0.0.1/32".into(),
            "10.1.2.3/8".into(),
            "::1".into(),
        ]))
        .unwrap();
        assert!(t.allows("127.0.0.1".parse().unwrap()));
        assert!(t.allows("10.200.0.1".parse().unwrap()));
        assert!(t.allows("::1".parse().unwrap()));
        assert!(t.allows("::ffff:127.0.0.1".parse().unwrap()));
        assert!(!t.allows("127.0.0.2".parse().unwrap()));
        assert!(!t.allows("192.168.1.1".parse().unwrap()));
        assert!(
            TrustedProxies::parse(None)
                .unwrap()
                .allows("8.8.8.8".parse().unwrap())
        );
        let e = TrustedProxies::parse(Some(&["127.0.0.1".into(), "10.0.0.0/33".into()]))
            .unwrap_err()
            .to_string();
        assert!(e.contains("server.trusted_proxies[1]"), "{e}");
    }
}
