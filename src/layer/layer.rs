//! [`AuthLayer`]: configuration of the middleware.

use std::sync::Arc;

use tower_layer::Layer;

use super::service::Auth;
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
    pub(crate) shared: Arc<Shared<R>>,
}

#[derive(Debug)]
pub(crate) struct Shared<R> {
    pub(crate) auth: Authenticator,
    pub(crate) reject: R,
    pub(crate) require: Option<Requirement>,
    pub(crate) minter: Option<Minter>,
    pub(crate) anonymous: bool,
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
    /// The configuration, unshared (cloned only if a service still holds it).
    fn into_shared(self) -> Shared<R> {
        Arc::try_unwrap(self.shared).unwrap_or_else(|arc| Shared {
            auth: arc.auth.clone(),
            reject: arc.reject.clone(),
            require: arc.require.clone(),
            minter: arc.minter.clone(),
            anonymous: arc.anonymous,
        })
    }

    fn map(self, f: impl FnOnce(&mut Shared<R>)) -> Self {
        let mut shared = self.into_shared();
        f(&mut shared);
        AuthLayer {
            shared: Arc::new(shared),
        }
    }

    /// Uses `reject` to build rejection responses.
    pub fn with_rejection<R2: Reject>(self, reject: R2) -> AuthLayer<R2> {
        let s = self.into_shared();
        AuthLayer {
            shared: Arc::new(Shared {
                auth: s.auth,
                reject,
                require: s.require,
                minter: s.minter,
                anonymous: s.anonymous,
            }),
        }
    }

    /// Also requires `requirement` of every authenticated user (403 otherwise).
    pub fn require(self, requirement: Requirement) -> Self {
        self.map(|s| s.require = Some(requirement))
    }

    /// Mints a JWT for every authenticated request and inserts it as a
    /// [`MintedToken`](crate::mint::MintedToken) extension.
    pub fn mint(self, minter: Minter) -> Self {
        self.map(|s| s.minter = Some(minter))
    }

    /// Lets requests without any credential through without a principal (use `Option<User>` in
    /// handlers). Invalid credentials are still rejected.
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
        Auth {
            inner,
            shared: self.shared.clone(),
        }
    }
}
