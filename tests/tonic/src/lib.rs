//! auth-o-tron in front of a tonic gRPC server: the example below is compiled and run as a doc
//! test (`cargo test -p auth-o-tron-tonic`), the cases in `tests/` go further.
//!
//! It lives in this workspace member, not in the `auth-o-tron` crate's docs, because a doc test
//! builds its crate's dev-dependencies, and so does every example: with tonic there,
//! `cargo run --example sidecar` would build a gRPC stack it never uses.
//!
//! `AuthLayer` and `RequireLayer` are plain tower layers, so tonic's `Server::builder().layer(..)`
//! takes them as they are; no cargo feature is needed. The layer answers a gRPC request (one with
//! `content-type: application/grpc`) with a gRPC status: no or a wrong credential is
//! `Unauthenticated`, a failed guard `PermissionDenied`, no provider able to decide `Unavailable`.
//! The order matters: `AuthLayer` first, then the guards (in tonic the first `.layer` is the
//! outermost).
//!
//! ```
//! use auth_o_tron::guard::{RequireLayer, Requirement};
//! use auth_o_tron::{AuthLayer, Authenticator, provider::PlainProvider};
//! use tonic::{Code, metadata::MetadataValue};
//! use tonic_health::pb::{HealthCheckRequest, health_client::HealthClient};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let users = PlainProvider::new("local", "demo")
//!     .with_user_password("alice", "wonderland", ["user"])?
//!     .with_user_password("bob", "builder", ["user", "admin"])?;
//! let auth = Authenticator::builder().provider(users).build()?;
//!
//! // The server: the standard health service, admins only.
//! let (_reporter, health) = tonic_health::server::health_reporter();
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
//! let url = format!("http://{}", listener.local_addr()?);
//! let server = tonic::transport::Server::builder()
//!     .layer(AuthLayer::new(auth))
//!     .layer(RequireLayer::new(Requirement::role("admin")))
//!     .add_service(health)
//!     .serve_with_incoming(tokio_stream::wrappers::TcpListenerStream::new(listener));
//! tokio::spawn(server);
//!
//! // The client: credentials go in the `authorization` metadata.
//! let channel = tonic::transport::Endpoint::from_shared(url)?.connect().await?;
//! let mut client = HealthClient::new(channel);
//! let call = |basic: Option<&str>| {
//!     let mut req = tonic::Request::new(HealthCheckRequest::default());
//!     if let Some(b) = basic {
//!         let value = MetadataValue::try_from(format!("Basic {b}")).unwrap();
//!         req.metadata_mut().insert("authorization", value);
//!     }
//!     req
//! };
//! // base64("bob:builder") and base64("alice:wonderland").
//! let (bob, alice) = ("Ym9iOmJ1aWxkZXI=", "YWxpY2U6d29uZGVybGFuZA==");
//!
//! assert!(client.check(call(Some(bob))).await.is_ok());
//! let anonymous = client.check(call(None)).await.unwrap_err();
//! assert_eq!(anonymous.code(), Code::Unauthenticated);
//! let not_admin = client.check(call(Some(alice))).await.unwrap_err();
//! assert_eq!(not_admin.code(), Code::PermissionDenied);
//! # Ok(()) }
//! ```
