//! [`AuthLayer`]: configuration of the middleware.

use std::sync::Arc;

use tower_layer::Layer;

use super::service::Auth;
use super::shared::Shared;
use crate::authenticator::Authenticator;
use crate::guard::Requirement;
use crate::mint::Minter;
use crate::reject::{DefaultReject, Reject};

/// Authenticates every request with an [`Authenticator`] and inserts the
/// [`Principal`](crate::Principal) into the request extensions.
///
/// ```
/// use auth_o_tron::{AuthLayer, Authenticator, provider::PlainProvider};
///
/// let users = PlainProvider::new("local", "demo")
///     .with_user_password("alice", "correct horse", ["admin"])
///     .unwrap();
/// let auth = Authenticator::builder().provider(users).build().unwrap();
/// let layer = AuthLayer::new(auth);
/// # let _ = layer;
/// ```
#[derive(Clone, Debug)]
#[must_use]
pub struct AuthLayer<R = DefaultReject> {
    shared: Arc<Shared<R>>,
}

impl AuthLayer {
    /// A layer that authenticates with `auth` and rejects with the default responses.
    pub fn new(auth: Authenticator) -> Self {
        AuthLayer {
            shared: Arc::new(Shared {
                auth,
                reject: DefaultReject,
                require: None,
                minter: None,
                anonymous: false,
            }),
        }
    }
}

impl<R: Reject> AuthLayer<R> {
    fn map(self, f: impl FnOnce(&mut Shared<R>)) -> Self {
        // Unshared unless a service still holds it, in which case the configuration is copied.
        let mut shared =
            Arc::try_unwrap(self.shared).unwrap_or_else(|arc| arc.with_reject(arc.reject.clone()));
        f(&mut shared);
        AuthLayer {
            shared: Arc::new(shared),
        }
    }

    /// Uses `reject` to build rejection responses.
    pub fn with_rejection<R2: Reject>(self, reject: R2) -> AuthLayer<R2> {
        AuthLayer {
            shared: Arc::new(self.shared.with_reject(reject)),
        }
    }

    /// Also requires `requirement` of every authenticated user (403 otherwise).
    pub fn require(self, requirement: Requirement) -> Self {
        self.map(|s| s.require = Some(requirement))
    }

    /// Mints a JWT for every authenticated request and inserts it as a
    /// [`MintedToken`](crate::mint::MintedToken) extension. The token is reused while the
    /// principal stays cached and the token fresh (see [`Minter::mint_cached`]).
    ///
    /// A handler that calls a backend on the user's behalf forwards the token; the backend
    /// verifies it with the minter's JWKS (serve [`Minter::jwks`] to it, e.g. at
    /// `/.well-known/jwks.json`):
    ///
    /// ```
    /// # #[cfg(feature = "axum")]
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// use auth_o_tron::mint::{MintedToken, Minter, SigningKey};
    /// use auth_o_tron::{AuthLayer, Authenticator, provider::PlainProvider};
    /// use axum::{Router, body::Body, http::Request, routing::get};
    /// use jsonwebtoken::{Algorithm, DecodingKey, Validation};
    /// use tower::ServiceExt;
    ///
    /// let users = PlainProvider::new("local", "demo")
    ///     .with_user_password("alice", "wonderland", ["user"])?;
    /// let auth = Authenticator::builder().provider(users).build()?;
    /// let minter = Minter::builder("https://auth.example.org", SigningKey::generate_es256("k1")?)
    ///     .audience("reports-backend")
    ///     .build()?;
    /// let jwks = minter.jwks();
    /// let app = Router::new()
    ///     .route("/reports", get(|token: MintedToken| async move {
    ///         // Here: `client.get(backend).header(AUTHORIZATION, token.bearer_header())`.
    ///         token.as_str().to_owned()
    ///     }))
    ///     .route_layer(AuthLayer::new(auth).mint(minter));
    ///
    /// let req = Request::get("/reports")
    ///     .header("authorization", "Basic YWxpY2U6d29uZGVybGFuZA==") // alice:wonderland
    ///     .body(Body::empty())?;
    /// let body = app.oneshot(req).await?.into_body();
    /// let jwt = String::from_utf8(axum::body::to_bytes(body, 64 * 1024).await?.to_vec())?;
    ///
    /// // The backend's side.
    /// let kid = jsonwebtoken::decode_header(&jwt)?.kid.ok_or("no kid")?;
    /// let key = DecodingKey::from_jwk(jwks.find(&kid).ok_or("unknown kid")?)?;
    /// let mut validation = Validation::new(Algorithm::ES256);
    /// validation.set_issuer(&["https://auth.example.org"]);
    /// validation.set_audience(&["reports-backend"]);
    /// let claims = jsonwebtoken::decode::<serde_json::Value>(&jwt, &key, &validation)?.claims;
    /// assert_eq!(claims["username"], "alice");
    /// # Ok(()) }
    /// # #[cfg(not(feature = "axum"))]
    /// # fn main() {}
    /// ```
    pub fn mint(self, minter: Minter) -> Self {
        self.map(|s| s.minter = Some(minter))
    }

    /// Lets requests without any credential through without a principal (use `Option<User>` in
    /// handlers). Invalid credentials are still rejected. A guard behind the layer answers such
    /// a request with 401 and the layer's challenge. With [`require`](Self::require) on the
    /// same layer, anonymous requests get that 401 at the layer: the requirement holds for
    /// every request.
    ///
    /// Without it, `Option<User>` is never `None`: the layer answers 401 before the handler
    /// runs. Required and optional routes can share one such layer, as here:
    ///
    /// ```
    /// # #[cfg(feature = "axum")]
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// use auth_o_tron::{AuthLayer, Authenticator, User, provider::PlainProvider};
    /// use axum::{Router, body::Body, http::Request, routing::get};
    /// use tower::ServiceExt;
    ///
    /// let users = PlainProvider::new("local", "demo")
    ///     .with_user_password("alice", "wonderland", ["user"])?;
    /// let auth = Authenticator::builder().provider(users).build()?;
    /// let app = Router::new()
    ///     .route("/me", get(|user: User| async move { user.username }))
    ///     .route("/", get(|user: Option<User>| async move {
    ///         user.map_or("stranger".to_owned(), |u| u.username)
    ///     }))
    ///     .route_layer(AuthLayer::new(auth).allow_anonymous());
    ///
    /// // base64("alice:wonderland") and base64("alice:wrong").
    /// let get = |path: &str, basic: Option<&str>| {
    ///     let req = Request::get(path);
    ///     let req = match basic {
    ///         Some(b) => req.header("authorization", format!("Basic {b}")),
    ///         None => req,
    ///     };
    ///     app.clone().oneshot(req.body(Body::empty()).unwrap())
    /// };
    /// let (alice, wrong) = (Some("YWxpY2U6d29uZGVybGFuZA=="), Some("YWxpY2U6d3Jvbmc="));
    /// assert_eq!(get("/", None).await?.status(), 200); // "stranger"
    /// assert_eq!(get("/", alice).await?.status(), 200); // "alice"
    /// assert_eq!(get("/", wrong).await?.status(), 401); // a wrong password is not anonymous
    /// assert_eq!(get("/me", None).await?.status(), 401); // `User` is required
    /// assert_eq!(get("/me", alice).await?.status(), 200);
    /// # Ok(()) }
    /// # #[cfg(not(feature = "axum"))]
    /// # fn main() {}
    /// ```
    pub fn allow_anonymous(self) -> Self {
        self.map(|s| s.anonymous = true)
    }

    /// The authenticator.
    pub fn authenticator(&self) -> &Authenticator {
        &self.shared.auth
    }
}

impl<S, R> Layer<S> for AuthLayer<R> {
    type Service = Auth<S, R>;

    fn layer(&self, inner: S) -> Self::Service {
        Auth::new(inner, self.shared.clone())
    }
}
