//! [`Shared`]: the configuration every [`Auth`](super::Auth) service of one layer shares, and
//! the decision it makes once the pipeline has answered.
//!
//! The decision is here, once, for both places that take it: `Auth::call` when the lookup was
//! decided at once (cache hit, early rejection) and the response future when providers had to
//! be asked.

use bytes::Bytes;
use http::{Request, Response};

use crate::authenticator::{Authenticated, Authenticator};
use crate::error::AuthError;
use crate::guard::Requirement;
use crate::mint::{MintError, Minter};
use crate::reject::{Reject, Rejection, is_grpc};
use crate::user::Anonymous;

#[derive(Debug)]
pub(crate) struct Shared<R> {
    pub(crate) auth: Authenticator,
    pub(crate) reject: R,
    pub(crate) require: Option<Requirement>,
    pub(crate) minter: Option<Minter>,
    pub(crate) anonymous: bool,
}

/// What becomes of a request once the pipeline has answered.
pub(crate) enum Decision {
    /// On to the inner service, with the principal (and minted token) or the anonymous marker
    /// in the request's extensions.
    Call,
    /// Answered with this rejection.
    Reject(Response<Bytes>),
}

impl<R: Reject> Shared<R> {
    /// The decision for `req` after the pipeline answered `outcome`.
    pub(crate) fn decide<B>(
        &self,
        outcome: Result<Authenticated, AuthError>,
        req: &mut Request<B>,
    ) -> Decision {
        let admitted = match outcome {
            Ok(found) => self.admit(found, req),
            // A layer-wide requirement holds for every request: sending no credential must
            // never get further than sending a valid one that lacks the role.
            Err(AuthError::Missing) if self.anonymous && self.require.is_none() => {
                let challenge = self.auth.challenges().for_error(&AuthError::Missing);
                req.extensions_mut().insert(Anonymous { challenge });
                Ok(())
            }
            Err(e) => Err(e),
        };
        match admitted {
            Ok(()) => Decision::Call,
            Err(e) => Decision::Reject(self.reject(&e, is_grpc(req.headers()))),
        }
    }

    /// Guards and minting for an authenticated request; then the principal goes into the
    /// extensions.
    fn admit<B>(&self, found: Authenticated, req: &mut Request<B>) -> Result<(), AuthError> {
        let Authenticated { principal, minted } = found;
        if let Some(req) = &self.require {
            req.check(&principal).map_err(AuthError::Forbidden)?;
        }
        if let Some(minter) = &self.minter {
            let token = minter
                .mint_cached(&principal, &minted)
                .map_err(|e| match e {
                    MintError::Expired => AuthError::Invalid,
                    other => {
                        tracing::error!(error = %other, "auth.mint.failed");
                        AuthError::Unavailable
                    }
                })?;
            req.extensions_mut().insert(token);
        }
        req.extensions_mut().insert(principal);
        Ok(())
    }

    fn reject(&self, error: &AuthError, grpc: bool) -> Response<Bytes> {
        let rejection = Rejection {
            error,
            challenge: self.auth.challenges().for_error(error),
            grpc,
        };
        tracing::debug!(target: "auth_o_tron::rejection", status = error.status().as_u16(), error = %error, "rejected");
        self.reject.reject(&rejection)
    }
}

impl<R> Shared<R> {
    /// A copy with another rejection strategy.
    pub(crate) fn with_reject<R2>(&self, reject: R2) -> Shared<R2> {
        Shared {
            auth: self.auth.clone(),
            reject,
            require: self.require.clone(),
            minter: self.minter.clone(),
            anonymous: self.anonymous,
        }
    }
}
