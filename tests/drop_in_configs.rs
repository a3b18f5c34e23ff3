//! ecmwf/auth-o-tron configuration files load unchanged: the contract's minimal file (with its
//! 9-byte secret), its v1 form, and a v2 file with every provider and augmenter type written
//! with in-cluster plain-HTTP URLs, with and without the optional sections. Each builds, warns
//! about nothing but what deserves it, and the minimal one answers a decision.
#![cfg(feature = "sidecar")]

mod common;

use auth_o_tron::sidecar::config::{Config, warnings};
use auth_o_tron::sidecar::{metrics::Metrics, router, server};
use common::{basic, client};

/// The contract's minimal v2 file, verbatim.
const MINIMAL: &str = r#"version: "2.0.0"
server: {port: 8080}
providers:
  - {type: plain, name: local, realm: localrealm, users: [{username: alice, password: alicepass}]}
jwt: {iss: my-issuer, exp: 3600, secret: change-me}
store: {enabled: false}
services: []
logging: {level: info, format: json}
"#;

/// Every provider and augmenter type, keys as the contract lists them.
const EVERY_TYPE: &str = r#"version: "2.0.0"
server: {host: 0.0.0.0, port: 8080}
auth: {timeout_in_ms: 3000}
providers:
  - type: plain
    name: local_users
    realm: internal
    users:
      - {username: alice, password: alicepass, roles: [admin]}
  - type: jwt
    name: keycloak
    realm: external
    cert_uri: http://keycloak:8080/realms/x/protocol/openid-connect/certs
    iam_realm: x
  - {type: ecmwf-api, name: ecmwf, realm: ecmwf, uri: "http://ecmwf-api:8080/v1"}
  - {type: efas-api, name: efas, realm: efas, uri: "http://efas:8080/user"}
  - type: openid-offline
    name: desp
    realm: desp
    cert_uri: http://iam:8080/realms/desp/protocol/openid-connect/certs
    public_client_id: public
    private_client_id: private
    private_client_secret: secret
    iam_url: http://iam:8080
  - type: ecmwf-token-generator
    name: tokens
    realm: tg
    cert_uri: http://iam:8080/realms/tg/protocol/openid-connect/certs
    client_id: client
    client_secret: secret
    token_generator_url: http://token-generator:8080
augmenters:
  - {type: plain, name: basic_roles, realm: internal, roles: {admin: [alice, bob]}}
  - type: plain_advanced
    name: polytope_admins
    realm: ecmwf
    match: {role: [admin], username: [adam]}
    augment: {roles: [observer], attributes: {team: polytope}}
  - type: ldap
    name: directory
    realm: ecmwf
    uri: ldap://ldap:389
    search_base: dc=example,dc=org
    bind_dn: cn=reader,dc=example,dc=org
    ldap_password: reader
    filters: [OU=Teams]
jwt: {iss: auth-o-tron, exp: 3600, secret: short}
"#;

const OPTIONAL: &str = r#"metrics: {enabled: true, port: 9191}
include_legacy_headers: true
store: {enabled: false}
services:
  - {name: polytope, scopes: [read, write]}
logging: {level: warn, format: console}
"#;

fn load(yaml: &str) -> (Config, Vec<String>) {
    let loaded = Config::from_yaml(yaml, Vec::<(String, String)>::new())
        .unwrap_or_else(|e| panic!("{e}\n{yaml}"));
    (loaded.config, loaded.warnings)
}

#[test]
fn every_provider_and_augmenter_type_loads_unchanged_with_plain_http_and_a_short_secret() {
    for yaml in [EVERY_TYPE.to_owned(), format!("{EVERY_TYPE}{OPTIONAL}")] {
        let (config, unknown) = load(&yaml);
        // Nothing of the contract is "unknown" (openid-offline's and the token generator's
        // keys among them, and `services`, now the scopes catalogue): only the
        // plaintext-password deprecation may be said.
        assert!(
            unknown.iter().all(|w| w.contains("plaintext `password`")),
            "{unknown:?}"
        );
        let built = config.build().unwrap_or_else(|e| panic!("{e}"));
        let kinds: Vec<_> = built
            .authenticator
            .providers()
            .map(|p| p.kind().to_owned())
            .collect();
        assert_eq!(
            kinds,
            [
                "plain",
                "jwt",
                "ecmwf-api",
                "efas-api",
                "openid-offline",
                "ecmwf-token-generator"
            ]
        );
        assert_eq!(built.authenticator.augmenters().count(), 3);
        let w = warnings(&config);
        for key in [
            "providers[1].cert_uri",
            "providers[2].uri",
            "providers[3].uri",
            "providers[4].cert_uri",
            "providers[4].iam_url",
            "providers[5].token_generator_url",
        ] {
            assert!(
                w.iter()
                    .any(|l| l.starts_with(&format!("{key} is plain HTTP"))),
                "{key}: {w:?}"
            );
        }
        assert!(
            w.iter().any(|l| l.starts_with("jwt.secret has 5 bytes")),
            "{w:?}"
        );
    }
}

#[test]
fn the_v1_form_loads_too() {
    let v1 = MINIMAL.replace(
        "version: \"2.0.0\"\nserver: {port: 8080}",
        "version: \"1.0.0\"\nbind_address: \"0.0.0.0:8080\"",
    );
    let (config, _) = load(&v1);
    assert_eq!(config.server.port, 8080);
    config.build().unwrap();
}

#[tokio::test]
async fn the_contracts_minimal_file_starts_and_answers() {
    let (config, _) = load(MINIMAL);
    let built = config.build().unwrap();
    let app = router::app(&config, &built, Metrics::new(&built.authenticator));
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    tokio::spawn(server::serve(
        l,
        app,
        server::Limits::default(),
        std::future::pending(),
    ));
    let res = client()
        .get(format!("http://{addr}/authenticate"))
        .header("authorization", basic("alice", "alicepass"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let jwt = res.headers()["authorization"]
        .to_str()
        .unwrap()
        .strip_prefix("Bearer ")
        .unwrap()
        .to_owned();
    let mut v = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::HS256);
    v.validate_aud = false;
    let claims = jsonwebtoken::decode::<serde_json::Value>(
        &jwt,
        &jsonwebtoken::DecodingKey::from_secret(b"change-me").unwrap(),
        &v,
    )
    .unwrap()
    .claims;
    assert_eq!(claims["iss"], "my-issuer");
    assert_eq!(claims["username"], "alice");
}
