//! The same layer in front of a real tonic gRPC server (the standard health service) over TCP.

use auth_o_tron::guard::{RequireLayer, Requirement};
use auth_o_tron::provider::PlainProvider;
use auth_o_tron::{AuthLayer, Authenticator};
use tonic::Code;
use tonic::metadata::MetadataValue;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_client::HealthClient;

/// `Authorization: Basic` for `user:pass`.
fn basic(user: &str, pass: &str) -> String {
    use base64::Engine;
    let b64 = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{pass}"));
    format!("Basic {b64}")
}

/// Where the guard goes relative to the `AuthLayer`.
enum Guard {
    None,
    Inside(Requirement),
    /// The wrong order: the guard runs before the layer.
    Outside(Requirement),
}

async fn start(guard: Guard) -> String {
    let users = PlainProvider::new("local", "demo")
        .with_user_password("alice", "secret", ["admin"])
        .unwrap()
        .with_user_password("bob", "builder", ["user"])
        .unwrap();
    let auth = Authenticator::builder().provider(users).build().unwrap();
    let (_reporter, health) = tonic_health::server::health_reporter();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let incoming = tokio_stream::wrappers::TcpListenerStream::new(listener);
    match guard {
        Guard::Inside(r) => {
            let server = tonic::transport::Server::builder()
                .layer(AuthLayer::new(auth))
                .layer(RequireLayer::new(r))
                .add_service(health);
            tokio::spawn(server.serve_with_incoming(incoming));
        }
        Guard::Outside(r) => {
            let server = tonic::transport::Server::builder()
                .layer(RequireLayer::new(r))
                .layer(AuthLayer::new(auth))
                .add_service(health);
            tokio::spawn(server.serve_with_incoming(incoming));
        }
        Guard::None => {
            let server = tonic::transport::Server::builder()
                .layer(AuthLayer::new(auth))
                .add_service(health);
            tokio::spawn(server.serve_with_incoming(incoming));
        }
    }
    format!("http://{addr}")
}

async fn check(url: &str, authorization: Option<String>) -> Result<i32, tonic::Status> {
    let channel = tonic::transport::Endpoint::from_shared(url.to_owned())
        .unwrap()
        .connect()
        .await
        .unwrap();
    let mut client = HealthClient::new(channel);
    let mut req = tonic::Request::new(HealthCheckRequest {
        service: String::new(),
    });
    if let Some(a) = authorization {
        req.metadata_mut()
            .insert("authorization", MetadataValue::try_from(a).unwrap());
    }
    client.check(req).await.map(|r| r.into_inner().status)
}

#[tokio::test]
async fn grpc_requests_get_grpc_statuses() {
    let url = start(Guard::None).await;
    assert_eq!(
        check(&url, Some(basic("alice", "secret"))).await.unwrap(),
        1,
        "SERVING"
    );
    let err = check(&url, None).await.unwrap_err();
    assert_eq!(err.code(), Code::Unauthenticated);
    let err = check(&url, Some(basic("alice", "wrong")))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::Unauthenticated);
}

#[tokio::test]
async fn require_layer_gives_permission_denied() {
    let url = start(Guard::Inside(Requirement::role("admin"))).await;
    assert_eq!(
        check(&url, Some(basic("alice", "secret"))).await.unwrap(),
        1
    );
    let err = check(&url, Some(basic("bob", "builder")))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::PermissionDenied);
}

#[tokio::test]
async fn a_guard_before_the_layer_is_an_internal_error_not_unauthenticated() {
    let url = start(Guard::Outside(Requirement::role("admin"))).await;
    let err = check(&url, Some(basic("alice", "secret")))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::Internal, "{err:?}");
}
