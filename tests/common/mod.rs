//! Shared helpers: a counting Bearer provider (a user-written provider, as the `Provider` trait
//! invites) and a real axum server on a loopback port.
#![allow(dead_code, unreachable_pub, missing_docs)]

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, SystemTime};

use auth_o_tron::User;
use auth_o_tron::credentials::Scheme;
use auth_o_tron::provider::{BoxFuture, Identity, Provider, ProviderError, ProviderInfo};

/// What the token provider does on a call.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    Normal,
    Down,
}

/// Bearer tokens mapped to users, with a call counter, a delay and an outage switch.
#[derive(Clone)]
pub struct Tokens {
    pub info: ProviderInfo,
    pub tokens: Arc<HashMap<String, (User, Option<SystemTime>)>>,
    pub calls: Arc<AtomicUsize>,
    pub delay: Duration,
    pub mode: Arc<std::sync::Mutex<Mode>>,
}

impl Tokens {
    pub fn new(name: &str, realm: &str) -> Self {
        Tokens {
            info: ProviderInfo::new(name, "test-tokens", realm, Scheme::Bearer),
            tokens: Arc::new(HashMap::new()),
            calls: Arc::new(AtomicUsize::new(0)),
            delay: Duration::ZERO,
            mode: Arc::new(std::sync::Mutex::new(Mode::Normal)),
        }
    }

    pub fn token(mut self, token: &str, user: User, exp: Option<SystemTime>) -> Self {
        Arc::make_mut(&mut self.tokens).insert(token.into(), (user, exp));
        self
    }

    pub fn delay(mut self, d: Duration) -> Self {
        self.delay = d;
        self
    }

    pub fn calls(&self) -> usize {
        self.calls.load(Ordering::SeqCst)
    }

    pub fn set_mode(&self, m: Mode) {
        *self.mode.lock().unwrap() = m;
    }
}

impl Provider for Tokens {
    fn info(&self) -> &ProviderInfo {
        &self.info
    }
    fn authenticate<'a>(
        &'a self,
        credential: auth_o_tron::credentials::Credential<'a>,
    ) -> BoxFuture<'a, Result<Identity, ProviderError>> {
        Box::pin(async move {
            self.calls.fetch_add(1, Ordering::SeqCst);
            if !self.delay.is_zero() {
                tokio::time::sleep(self.delay).await;
            }
            if *self.mode.lock().unwrap() == Mode::Down {
                return Err(ProviderError::unavailable("upstream down"));
            }
            match self.tokens.get(credential.secret()) {
                // Like a real provider, refuse a credential past its own expiry.
                Some((_, Some(exp))) if *exp <= SystemTime::now() => {
                    Err(ProviderError::invalid("expired"))
                }
                Some((user, exp)) => Ok(Identity {
                    user: user.clone(),
                    expires_at: *exp,
                }),
                None => Err(ProviderError::invalid("unknown token")),
            }
        })
    }
}

/// Serves `router` on a free loopback port.
pub async fn serve(router: axum::Router) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    addr
}

pub fn basic(user: &str, pass: &str) -> String {
    use base64::Engine;
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{user}:{pass}"))
    )
}

pub fn client() -> reqwest::Client {
    reqwest::Client::builder().no_proxy().build().unwrap()
}

/// Sends a raw HTTP/1.1 request and returns the status line and the whole response text.
pub async fn raw(addr: SocketAddr, request: &str) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    s.write_all(request.as_bytes()).await.unwrap();
    let mut out = Vec::new();
    s.read_to_end(&mut out).await.unwrap();
    String::from_utf8_lossy(&out).into_owned()
}
pub mod client;
pub mod fake_api;
pub mod logs;
pub mod portal;
#[cfg(feature = "e2e")]
pub mod postgres;
#[cfg(feature = "sidecar")]
pub mod process;
