//! The one HTTP client every remote provider shares: rustls, connect and total timeouts, no
//! redirects, a response size cap, and errors that never echo a URL (URLs may carry tokens).

use std::time::Duration;

use super::{BuildError, ProviderError};

/// Default connect timeout.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
/// Default total timeout of one call.
pub const DEFAULT_TOTAL_TIMEOUT: Duration = Duration::from_secs(4);
/// Default cap on a response body.
pub const DEFAULT_MAX_BODY: usize = 1024 * 1024;

/// A shared, cheap-to-clone HTTP client for providers.
#[derive(Clone, Debug)]
pub struct HttpClient {
    client: reqwest::Client,
    connect: Duration,
    total: Duration,
    max_body: usize,
    allow_http: bool,
}

/// Builds an [`HttpClient`].
#[derive(Debug)]
#[must_use]
pub struct HttpClientBuilder {
    connect: Duration,
    total: Duration,
    max_body: usize,
    allow_http: bool,
}

impl HttpClientBuilder {
    /// Connect timeout (default 2 s).
    pub fn connect_timeout(mut self, d: Duration) -> Self {
        self.connect = d;
        self
    }
    /// Total timeout per call (default 4 s).
    pub fn timeout(mut self, d: Duration) -> Self {
        self.total = d;
        self
    }
    /// Largest accepted response body (default 1 MiB).
    pub fn max_body(mut self, bytes: usize) -> Self {
        self.max_body = bytes;
        self
    }
    /// Allows `http://` URLs. Off by default: tokens and keys travel over TLS only. Loopback
    /// test servers need it.
    pub fn allow_http(mut self, allow: bool) -> Self {
        self.allow_http = allow;
        self
    }
    /// Builds the client.
    pub fn build(self) -> Result<HttpClient, BuildError> {
        let client = reqwest::Client::builder()
            .connect_timeout(self.connect)
            .timeout(self.total)
            .redirect(reqwest::redirect::Policy::none())
            .https_only(!self.allow_http)
            .user_agent(concat!("auth-o-tron/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| {
                BuildError::Setup(format!("cannot build the HTTP client: {}", e.without_url()))
            })?;
        Ok(HttpClient {
            client,
            connect: self.connect,
            total: self.total,
            max_body: self.max_body,
            allow_http: self.allow_http,
        })
    }
}

/// A response whose body was read within the cap.
#[derive(Debug)]
pub struct Fetched {
    /// The status.
    pub status: http::StatusCode,
    /// The body.
    pub body: bytes::Bytes,
}

impl Fetched {
    /// Ok for a 2xx answer. A status in `refused` means the service refused the credential
    /// (`Invalid` with `why`); any other status means it could not decide (`Unavailable`).
    pub fn check_status(
        &self,
        what: &'static str,
        refused: &[u16],
        why: &'static str,
    ) -> Result<(), ProviderError> {
        let code = self.status.as_u16();
        if self.status.is_success() {
            Ok(())
        } else if refused.contains(&code) {
            Err(ProviderError::invalid(why))
        } else {
            Err(ProviderError::unavailable(format!("{what}: status {code}")))
        }
    }

    /// The body as JSON, or `Unavailable` (a garbage answer means the provider cannot decide).
    pub fn json<T: serde::de::DeserializeOwned>(
        &self,
        what: &'static str,
    ) -> Result<T, ProviderError> {
        serde_json::from_slice(&self.body).map_err(|_| {
            ProviderError::unavailable(format!("{what}: response is not the expected JSON"))
        })
    }
}

impl HttpClient {
    /// Starts building a client.
    pub fn builder() -> HttpClientBuilder {
        HttpClientBuilder {
            connect: DEFAULT_CONNECT_TIMEOUT,
            total: DEFAULT_TOTAL_TIMEOUT,
            max_body: DEFAULT_MAX_BODY,
            allow_http: false,
        }
    }

    /// The underlying reqwest client, to build requests.
    pub fn inner(&self) -> &reqwest::Client {
        &self.client
    }

    /// The connect timeout.
    pub fn connect_timeout(&self) -> Duration {
        self.connect
    }

    /// The total timeout of one call.
    pub fn timeout(&self) -> Duration {
        self.total
    }

    /// Whether `http://` URLs are allowed.
    pub fn allows_http(&self) -> bool {
        self.allow_http
    }

    /// Refuses URLs this client will not call: not http(s), or plain HTTP when not allowed.
    /// The error names `field`, the setting the URL came from.
    pub fn check_url(&self, field: &'static str, url: &str) -> Result<(), BuildError> {
        let https = url.starts_with("https://");
        let http_ok = self.allow_http && url.starts_with("http://");
        if https || http_ok {
            Ok(())
        } else {
            Err(BuildError::Url {
                field,
                url: url.to_owned(),
                expected: "https://",
            })
        }
    }

    /// Sends `request` and reads the body up to the cap. Transport errors, timeouts and
    /// oversized bodies are `Unavailable`; the message names `what`, never the URL.
    ///
    /// A request that failed before any answer, for a reason other than a timeout (typically a
    /// pooled keep-alive connection the server had just closed), is sent once more. Use
    /// [`send_once`](Self::send_once) for calls that must not be repeated.
    pub async fn send(
        &self,
        what: &'static str,
        request: reqwest::RequestBuilder,
    ) -> Result<Fetched, ProviderError> {
        self.send_with(what, request, true).await
    }

    /// Like [`send`](Self::send), but never sends the request twice: for calls that are not
    /// idempotent, such as a refresh-token exchange (a repeated exchange of a rotating refresh
    /// token trips the IdP's reuse detection and revokes the grant).
    pub async fn send_once(
        &self,
        what: &'static str,
        request: reqwest::RequestBuilder,
    ) -> Result<Fetched, ProviderError> {
        self.send_with(what, request, false).await
    }

    async fn send_with(
        &self,
        what: &'static str,
        request: reqwest::RequestBuilder,
        retry: bool,
    ) -> Result<Fetched, ProviderError> {
        let retry = if retry { request.try_clone() } else { None };
        let first = request.send().await;
        let first = match (first, retry) {
            (Err(e), Some(again)) if !e.is_timeout() => again.send().await,
            (other, _) => other,
        };
        let mut res = first.map_err(|e| {
            let kind = if e.is_timeout() {
                "timed out"
            } else if e.is_connect() {
                "connection failed"
            } else {
                "request failed"
            };
            // Without the URL (it may carry a token); the cause chain names no secrets.
            let mut cause = String::new();
            let mut source = std::error::Error::source(&e);
            while let Some(s) = source {
                cause = format!("{cause}: {s}");
                source = s.source();
            }
            ProviderError::unavailable(format!("{what}: {kind}{cause}"))
        })?;
        let status = res.status();
        if res
            .content_length()
            .is_some_and(|n| n > self.max_body as u64)
        {
            return Err(ProviderError::unavailable(format!(
                "{what}: response too large"
            )));
        }
        let mut body = bytes::BytesMut::new();
        loop {
            match res.chunk().await {
                Ok(Some(chunk)) => {
                    if body.len() + chunk.len() > self.max_body {
                        return Err(ProviderError::unavailable(format!(
                            "{what}: response too large"
                        )));
                    }
                    body.extend_from_slice(&chunk);
                }
                Ok(None) => break,
                Err(e) => {
                    let kind = if e.is_timeout() {
                        "timed out"
                    } else {
                        "body read failed"
                    };
                    return Err(ProviderError::unavailable(format!("{what}: {kind}")));
                }
            }
        }
        Ok(Fetched {
            status,
            body: body.freeze(),
        })
    }
}

impl HttpClient {
    /// Fetches `{issuer}/.well-known/openid-configuration`, checks that its `issuer` is exactly
    /// the configured one (OIDC Discovery §4.3), and returns the URL string of each `fields`
    /// entry, each checked with [`check_url`](Self::check_url).
    pub async fn discover(
        &self,
        issuer: &str,
        fields: &[&str],
    ) -> Result<Vec<String>, ProviderError> {
        let url = format!(
            "{}/.well-known/openid-configuration",
            issuer.trim_end_matches('/')
        );
        let res = self.send("OIDC discovery", self.inner().get(url)).await?;
        if !res.status.is_success() {
            return Err(ProviderError::unavailable(format!(
                "OIDC discovery: status {}",
                res.status.as_u16()
            )));
        }
        let doc: serde_json::Value = res.json("OIDC discovery")?;
        if doc.get("issuer").and_then(serde_json::Value::as_str) != Some(issuer) {
            return Err(ProviderError::unavailable(
                "OIDC discovery: issuer does not match the configured issuer",
            ));
        }
        fields
            .iter()
            .map(|f| {
                let u = doc
                    .get(*f)
                    .and_then(serde_json::Value::as_str)
                    .ok_or_else(|| ProviderError::unavailable(format!("OIDC discovery: no {f}")))?;
                // A URL learned from an https document never downgrades to plain HTTP.
                if issuer.starts_with("https://") && !u.starts_with("https://") {
                    return Err(ProviderError::unavailable(format!(
                        "OIDC discovery: {f} downgrades to plain HTTP"
                    )));
                }
                self.check_url("discovery", u)
                    .map_err(|e| ProviderError::unavailable(format!("OIDC discovery: {f}: {e}")))?;
                Ok(u.to_owned())
            })
            .collect()
    }
}

/// The RFC 7662-style `active` member: `true` passes, `false` means the credential is not
/// valid, anything else (missing, a string) means the answer cannot be understood.
pub(crate) fn require_active(
    doc: &serde_json::Value,
    what: &'static str,
    inactive: &'static str,
) -> Result<(), ProviderError> {
    match doc.get("active") {
        Some(serde_json::Value::Bool(true)) => Ok(()),
        Some(serde_json::Value::Bool(false)) => Err(ProviderError::invalid(inactive)),
        _ => Err(ProviderError::unavailable(format!(
            "{what}: `active` is not a boolean"
        ))),
    }
}
