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
    pub fn mint(self, minter: Minter) -> Self {
        self.map(|s| s.minter = Some(minter))
    }

    /// Lets requests without any credential through without a principal (use `Option<User>` in
    /// handlers). Invalid credentials are still rejected. A guard behind the layer answers such
    /// a request with 401 and the layer's challenge. With [`require`](Self::require) on the
    /// same layer, anonymous requests get that 401 at the layer: the requirement holds for
    /// every request.
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
