//! The tower middleware: [`AuthLayer`] builds [`Auth<S>`], whose future is [`ResponseFuture`].
//!
//! On a cache hit or an early rejection the future is decided inside `call` and allocates
//! nothing; only a cache miss boxes the (dynamic) provider work. Either way the decision after
//! the lookup is the same function (`Shared::decide`).
//!
//! Readiness: `poll_ready` drives the inner service. When `call` can decide at once (cache hit,
//! rejection) it calls that readied service directly; on a miss it moves the readied service
//! into the future and leaves a clone behind (clone and swap), so a slot the inner service
//! reserved is held while providers are asked. Under axum this makes no difference (its
//! services are always ready).

mod future;
mod layer;
mod service;
mod shared;

pub use future::ResponseFuture;
pub use layer::AuthLayer;
pub use service::Auth;
