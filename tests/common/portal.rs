//! A browser for the token portal's tests: one cookie jar (the portal's one cookie), no
//! redirects followed, same-origin form posts with the Fetch Metadata a browser sends, and
//! readers for what a page shows (hidden form fields, the one-time secret, token ids).

use std::net::SocketAddr;

use reqwest::StatusCode;
use reqwest::header::HeaderMap;

/// The portal's view of one HTTP exchange.
pub struct Page {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub text: String,
}

impl Page {
    pub fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .map_or("", |v| v.to_str().unwrap_or(""))
    }

    /// The value of the hidden input `name`.
    pub fn hidden(&self, name: &str) -> String {
        let marker = format!("name=\"{name}\" value=\"");
        let start = self.text.find(&marker).unwrap_or_else(|| {
            panic!("no hidden {name} in {}", self.text);
        }) + marker.len();
        self.text[start..].split('"').next().unwrap().to_owned()
    }

    /// The `aot_` secret shown on the page, if any.
    pub fn secret(&self) -> Option<String> {
        let start = self.text.find("value=\"aot_")? + "value=\"".len();
        Some(self.text[start..].split('"').next()?.to_owned())
    }

    /// Token ids in links to `…/{id}/{verb}`.
    pub fn ids(&self, verb: &str) -> Vec<String> {
        self.text
            .match_indices(&format!("/{verb}\""))
            .map(|(i, _)| self.text[i - 32..i].to_owned())
            .collect()
    }
}

/// A browser: one cookie jar (the portal's one cookie), no redirects followed, and the
/// Fetch Metadata headers a browser sends for a same-origin form.
#[derive(Clone)]
pub struct Browser {
    pub base: String,
    pub client: reqwest::Client,
    pub cookie: Option<String>,
}

impl Browser {
    pub fn new(addr: SocketAddr) -> Self {
        Self::with_client(addr, reqwest::Client::builder())
    }

    /// A browser on another machine: its connections come from the loopback address `local`
    /// (any of 127.0.0.0/8), so a proxy in front forwards a different client address.
    pub fn from_address(addr: SocketAddr, local: std::net::IpAddr) -> Self {
        Self::with_client(addr, reqwest::Client::builder().local_address(local))
    }

    fn with_client(addr: SocketAddr, builder: reqwest::ClientBuilder) -> Self {
        Browser {
            base: format!("http://{addr}"),
            client: builder
                .no_proxy()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap(),
            cookie: None,
        }
    }

    pub async fn send(&mut self, req: reqwest::RequestBuilder) -> Page {
        let req = match &self.cookie {
            Some(c) => req.header("cookie", c),
            None => req,
        };
        let res = req.send().await.unwrap();
        let status = res.status();
        let headers = res.headers().clone();
        if let Some(set) = headers.get("set-cookie") {
            let pair = set.to_str().unwrap().split(';').next().unwrap().to_owned();
            self.cookie = (!pair.ends_with('=')).then_some(pair);
        }
        Page {
            status,
            headers,
            text: res.text().await.unwrap(),
        }
    }

    pub async fn get(&mut self, path: &str) -> Page {
        let req = self.client.get(format!("{}{path}", self.base));
        self.send(req).await
    }

    /// A same-origin form POST, as a browser sends it.
    pub async fn post(&mut self, path: &str, form: &[(&str, &str)]) -> Page {
        let req = self
            .client
            .post(format!("{}{path}", self.base))
            .header("origin", &self.base)
            .header("sec-fetch-site", "same-origin")
            .form(form);
        self.send(req).await
    }

    pub async fn login(&mut self, user: &str, pass: &str) -> Page {
        self.post("/portal/login", &[("username", user), ("password", pass)])
            .await
    }

    /// Creates a token named `name` with `scopes` ("service scope" pairs) from a fresh form.
    pub async fn create(
        &mut self,
        name: &str,
        scopes: &[(&str, &str)],
    ) -> (Page, Vec<(String, String)>) {
        let list = self.get("/portal/tokens").await;
        assert_eq!(list.status, StatusCode::OK, "{}", list.text);
        let mut form = vec![
            ("csrf".to_owned(), list.hidden("csrf")),
            ("nonce".to_owned(), list.hidden("nonce")),
            ("name".to_owned(), name.to_owned()),
            ("expires".to_owned(), "30".to_owned()),
        ];
        for (service, scope) in scopes {
            form.push((format!("scope:{service}"), (*scope).to_owned()));
        }
        let borrowed: Vec<(&str, &str)> =
            form.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        (self.post("/portal/tokens", &borrowed).await, form)
    }
}
