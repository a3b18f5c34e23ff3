//! A small test client in the spirit of axum's `TestClient`: serve a router (or point at a
//! running server), send with one expression, assert on a response whose body is already read.
//!
//! ```ignore
//! let c = TestClient::new(app).await;
//! let res = c.get("/me").basic("alice", "wonderland").await;
//! assert_eq!(res.status(), 200);
//! assert_eq!(res.json()["username"], "alice");
//! ```

use std::future::{Future, IntoFuture};
use std::net::SocketAddr;
use std::pin::Pin;

use bytes::Bytes;
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use reqwest::{Method, StatusCode};

/// Sends requests to one server.
#[derive(Clone)]
pub struct TestClient {
    client: reqwest::Client,
    addr: SocketAddr,
}

impl TestClient {
    /// Serves `router` on a free loopback port.
    pub async fn new(router: axum::Router) -> Self {
        Self::at(super::serve(router).await)
    }

    /// A client for a server already listening on `addr`.
    pub fn at(addr: SocketAddr) -> Self {
        TestClient {
            client: super::client(),
            addr,
        }
    }

    /// The server's address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn get(&self, path: &str) -> RequestBuilder {
        self.request(Method::GET, path)
    }

    pub fn request(&self, method: Method, path: &str) -> RequestBuilder {
        RequestBuilder {
            builder: self
                .client
                .request(method, format!("http://{}{path}", self.addr)),
        }
    }
}

/// One request being built; `.await` sends it and reads the whole response.
#[must_use]
pub struct RequestBuilder {
    builder: reqwest::RequestBuilder,
}

impl RequestBuilder {
    pub fn header<K, V>(mut self, key: K, value: V) -> Self
    where
        HeaderName: TryFrom<K>,
        <HeaderName as TryFrom<K>>::Error: Into<http::Error>,
        HeaderValue: TryFrom<V>,
        <HeaderValue as TryFrom<V>>::Error: Into<http::Error>,
    {
        self.builder = self.builder.header(key, value);
        self
    }

    /// `Authorization: <value>`.
    pub fn auth(self, value: impl AsRef<str>) -> Self {
        self.header("authorization", value.as_ref())
    }

    /// `Authorization: Basic <user:pass>`.
    pub fn basic(self, user: &str, pass: &str) -> Self {
        self.auth(super::basic(user, pass))
    }

    /// `Authorization: Bearer <token>`.
    pub fn bearer(self, token: &str) -> Self {
        self.auth(format!("Bearer {token}"))
    }
}

impl IntoFuture for RequestBuilder {
    type Output = TestResponse;
    type IntoFuture = Pin<Box<dyn Future<Output = TestResponse> + Send>>;

    fn into_future(self) -> Self::IntoFuture {
        Box::pin(async move {
            let res = self.builder.send().await.expect("request sent");
            let status = res.status();
            let headers = res.headers().clone();
            let body = res.bytes().await.expect("response body read");
            TestResponse {
                status,
                headers,
                body,
            }
        })
    }
}

/// A response with its body read.
#[derive(Debug)]
pub struct TestResponse {
    status: StatusCode,
    headers: HeaderMap,
    body: Bytes,
}

impl TestResponse {
    pub fn status(&self) -> StatusCode {
        self.status
    }

    pub fn headers(&self) -> &HeaderMap {
        &self.headers
    }

    /// The value of header `name`; panics (naming it) when it is missing or not text.
    pub fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .unwrap_or_else(|| panic!("no {name} header in {self:?}"))
            .to_str()
            .unwrap_or_else(|_| panic!("{name} is not visible ASCII"))
    }

    pub fn text(&self) -> &str {
        std::str::from_utf8(&self.body).expect("UTF-8 body")
    }

    pub fn json<T: serde::de::DeserializeOwned>(&self) -> T {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("body is not the expected JSON ({e}): {}", self.text()))
    }
}
