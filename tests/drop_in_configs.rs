//! ecmwf/auth-o-tron configuration files load unchanged: the contract's minimal file (with its
//! 9-byte secret), its v1 form, and a v2 file with every provider and augmenter type written
//! with in-cluster plain-HTTP URLs, with and without the optional sections. Each builds, warns
//! about nothing but what deserves it, and the minimal one answers a decision. Then the loader
//! as an operator meets it: `AOT_*` overrides (into lists too), errors that name the key,
//! unknown keys, and the warnings `--check` prints.
#![cfg(feature = "sidecar")]

mod common;

use auth_o_tron::sidecar::config::{Config, ConfigError, warnings};
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
        // keys among them): only the plaintext-password deprecation and the note that
        // `services` is not used yet may be said.
        assert!(
            unknown
                .iter()
                .all(|w| w.contains("plaintext `password`") || w.starts_with("`services`")),
            "{unknown:?}"
        );
        let built = config.build().unwrap_or_else(|e| panic!("{e}"));
        let kinds: Vec<_> = built
            .authenticator
            .providers()
            .map(|p| p.info().kind.to_owned())
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

/// Each entry's own definition decides which keys are known: the access-token checks of the
/// exchanging providers are used (never "ignored"), and a typo anywhere inside an entry, nested
/// ones included, is named with its full path.
#[test]
fn entry_keys_come_from_the_entry_and_typos_are_named_with_their_path() {
    let yaml = EVERY_TYPE
        .replace(
            "    iam_url: http://iam:8080\n",
            "    iam_url: http://iam:8080\n    issuer: http://iam:8080/realms/desp\n    audience: [api]\n",
        )
        .replace(
            "    token_generator_url: http://token-generator:8080\n",
            "    token_generator_url: http://token-generator:8080\n    issuer: http://iam:8080/realms/tg\n    audience: api\n",
        );
    let (config, unknown) = load(&yaml);
    assert!(
        unknown.iter().all(|w| !w.contains("unknown key")),
        "{unknown:?}"
    );
    config.build().unwrap();
    // Typos: at the top of an entry, in a provider's list item, in an augmenter's sub-mapping.
    let typos = yaml
        .replace("    audience: [api]\n", "    audiense: [api]\n")
        .replace(
            "alice, password: alicepass, roles",
            "alice, password: alicepass, rolez",
        )
        .replace(
            "match: {role: [admin], username",
            "match: {rol: [admin], username",
        );
    let (_, unknown) = load(&typos);
    for key in [
        "providers[4].audiense",
        "providers[0].users[0].rolez",
        "augmenters[1].match.rol",
    ] {
        assert!(
            unknown.contains(&format!("unknown key `{key}` is ignored")),
            "{key}: {unknown:?}"
        );
    }
    // Errors name the key of the entry that is wrong, in full.
    for (from, to, key) in [
        (
            "cert_uri: http://keycloak",
            "cert_uri: ftp://keycloak",
            "providers[1].cert_uri",
        ),
        (
            "uri: \"http://ecmwf-api",
            "uri: \"ftp://ecmwf-api",
            "providers[2].uri",
        ),
        (
            "cert_uri: http://iam:8080/realms/desp/",
            "cert_uri: ftp://iam:8080/realms/desp/",
            "providers[4].cert_uri",
        ),
        (
            "token_generator_url: http://token-generator",
            "token_generator_url: ftp://token-generator",
            "providers[5].token_generator_url",
        ),
        (
            "uri: ldap://ldap:389",
            "uri: http://ldap:389",
            "augmenters[2].uri",
        ),
        (
            "filters: [OU=Teams]",
            "filters: [Teams]",
            "augmenters[2].filters",
        ),
        (
            "{type: efas-api, name: efas, realm: efas,",
            "{type: efas-api, name: efas, realm: \"\",",
            "providers[3].realm",
        ),
        (
            "{type: efas-api, name: efas,",
            "{type: efas-api, name: ecmwf,",
            "providers[3].name",
        ),
        ("{type: efas-api,", "{type: efas,", "providers[3].type"),
    ] {
        let e = Config::from_yaml(&yaml.replace(from, to), Vec::<(String, String)>::new())
            .and_then(|l| l.config.build().map(|_| ()))
            .unwrap_err();
        assert!(
            e.to_string().starts_with(&format!("config key `{key}`")),
            "{key}: {e}"
        );
    }
}

/// `/providers` and `/augmenters` list what was built, in order, with each one's type and realm.
#[tokio::test]
async fn providers_and_augmenters_endpoints_list_what_was_built() {
    let (config, _) = load(EVERY_TYPE);
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
    let get = |path: &'static str| {
        let url = format!("http://{addr}{path}");
        async move {
            client()
                .get(url)
                .send()
                .await
                .unwrap()
                .json::<serde_json::Value>()
                .await
                .unwrap()
        }
    };
    let providers = get("/providers").await;
    assert_eq!(
        providers["providers"][4],
        serde_json::json!({"name": "desp", "type": "openid-offline", "realm": "desp"})
    );
    assert_eq!(providers["providers"].as_array().unwrap().len(), 6);
    let augmenters = get("/augmenters").await;
    assert_eq!(
        augmenters["augmenters"][2],
        serde_json::json!({"name": "directory", "type": "ldap", "realm": "ecmwf"})
    );
}

fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

#[test]
fn auth_o_tron_minimal_file_loads_with_its_defaults() {
    let l = Config::from_yaml(MINIMAL, env(&[])).unwrap();
    let c = l.config;
    assert_eq!(c.server.host, "0.0.0.0");
    assert_eq!(c.auth.timeout_in_ms, 5000);
    assert!(c.metrics.enabled);
    assert_eq!(c.metrics.port, 9090);
    let w = warnings(&c);
    assert!(w.iter().any(|w| w.contains("plaintext")), "{w:?}");
}

#[test]
fn env_overrides_win_and_keep_strings() {
    let l = Config::from_yaml(
        MINIMAL,
        env(&[
            ("AOT_JWT__ISS", "env-iss"),
            ("AOT_SERVER__PORT", "9000"),
            ("AOT_JWT__SECRET", "12345678901234567890123456789012345"),
            ("AOT_INCLUDE_LEGACY_HEADERS", "true"),
            ("AOT_CONFIG_PATH", "/etc/x.yaml"),
            ("OTHER", "x"),
        ]),
    )
    .unwrap();
    assert_eq!(l.config.jwt.iss, "env-iss");
    assert_eq!(l.config.server.port, 9000);
    assert_eq!(
        l.config
            .jwt
            .secret
            .as_ref()
            .map(auth_o_tron::Secret::expose),
        Some("12345678901234567890123456789012345")
    );
    assert!(l.config.include_legacy_headers);
    assert!(l.warnings.iter().all(|w| !w.contains("config_path")));
}

#[test]
fn env_overrides_reach_into_lists_and_name_a_bad_index() {
    let l = Config::from_yaml(MINIMAL, env(&[("AOT_PROVIDERS__0__REALM", "from-env")])).unwrap();
    assert_eq!(l.config.providers[0].keys.realm, "from-env");
    let e = Config::from_yaml(MINIMAL, env(&[("AOT_PROVIDERS__3__REALM", "x")])).unwrap_err();
    assert_eq!(
        e.to_string(),
        "config key `providers.3.realm`: from AOT_PROVIDERS__3__REALM: list index 3 is out of range"
    );
}

#[test]
fn v1_files_are_converted() {
    let v1 = MINIMAL.replace(
        "version: \"2.0.0\"\nserver: {port: 8080}",
        "version: \"1.0.0\"\nbind_address: \"[::1]:8181\"",
    );
    let c = Config::from_yaml(&v1, env(&[])).unwrap().config;
    assert_eq!((c.server.host.as_str(), c.server.port), ("::1", 8181));
    let bad = MINIMAL.replace(
        "version: \"2.0.0\"\nserver: {port: 8080}",
        "version: \"1.0.0\"\nbind_address: \":8181\"",
    );
    assert_eq!(
        Config::from_yaml(&bad, env(&[])).unwrap_err().to_string(),
        "config key `bind_address`: bind_address has empty host"
    );
}

#[test]
fn errors_name_the_key_and_unknown_keys_warn() {
    let e =
        Config::from_yaml(&MINIMAL.replace("port: 8080", "port: eighty"), env(&[])).unwrap_err();
    assert!(e.to_string().starts_with("config key `server.port`"), "{e}");
    let l = Config::from_yaml(
        &MINIMAL.replace("password: alicepass", "pasword: alicepass"),
        env(&[]),
    )
    .unwrap();
    assert!(
        l.warnings
            .contains(&"unknown key `providers[0].users[0].pasword` is ignored".into()),
        "{:?}",
        l.warnings
    );
    let e = l.config.build().unwrap_err();
    assert!(
        e.to_string()
            .starts_with("config key `providers[0].users[0]`: needs `password_hash`"),
        "{e}"
    );
    let l = Config::from_yaml(&format!("{MINIMAL}\nextra_top: 1\n"), env(&[])).unwrap();
    assert!(
        l.warnings.iter().any(|w| w.contains("`extra_top`")),
        "{:?}",
        l.warnings
    );
    let l = Config::from_yaml(
        &MINIMAL.replace("realm: localrealm,", "realm: localrealm, colour: red,"),
        env(&[]),
    )
    .unwrap();
    assert!(
        l.warnings.iter().any(|w| w.contains("providers[0].colour")),
        "{:?}",
        l.warnings
    );
    let e =
        Config::from_yaml(&MINIMAL.replace("level: info", "level: loud"), env(&[])).unwrap_err();
    assert!(e.to_string().contains("logging.level"));
    let e = Config::from_yaml(&MINIMAL.replace("port: 8080", "port: 9090"), env(&[])).unwrap_err();
    assert!(e.to_string().contains("metrics.port"));
    assert!(matches!(
        Config::from_yaml("- a\n- b", env(&[])),
        Err(ConfigError::Yaml(_))
    ));
    assert!(matches!(
        Config::from_yaml("a: [", env(&[])),
        Err(ConfigError::Yaml(_))
    ));
}

#[test]
fn services_and_store_are_optional() {
    let text = MINIMAL.replace("store: {enabled: false}\nservices: []\n", "");
    assert!(Config::from_yaml(&text, env(&[])).is_ok());
    let e = Config::from_yaml(
        &MINIMAL.replace("enabled: false", "enabled: true"),
        env(&[]),
    )
    .unwrap_err();
    assert!(e.to_string().contains("store.enabled"));
}

fn config(jwt_extra: &str) -> Config {
    let yaml = format!(
        r#"
version: "2.0.0"
server: {{port: 8080}}
providers:
  - {{type: jwt, name: kc, realm: kc, cert_uri: "https://idp.example/certs"{jwt_extra}}}
jwt: {{iss: i, exp: 60, secret: 0123456789abcdef0123456789abcdef}}
"#
    );
    Config::from_yaml(&yaml, Vec::<(String, String)>::new())
        .unwrap()
        .config
}

#[test]
fn a_jwt_provider_without_audience_or_issuer_is_named() {
    let w = warnings(&config(""));
    assert_eq!(w.len(), 1, "{w:?}");
    assert!(
        w[0].contains("providers[0]") && w[0].contains("\"kc\""),
        "{w:?}"
    );
    assert!(warnings(&config(", audience: api")).is_empty());
    assert!(warnings(&config(", issuer: \"https://idp.example\"")).is_empty());
}

#[tokio::test]
async fn secrets_of_digits_work_from_the_file_and_the_environment_and_are_never_echoed() {
    // YAML reads `password: 123456` as a number; auth-o-tron accepted it as the password.
    let yaml = MINIMAL.replace("password: alicepass", "password: 123456");
    assert!(yaml.contains("password: 123456"));
    for (yaml, vars, password) in [
        (yaml.clone(), env(&[]), "123456"),
        (
            MINIMAL.to_owned(),
            env(&[("AOT_PROVIDERS__0__USERS__0__PASSWORD", "0031415926")]),
            "0031415926",
        ),
    ] {
        let l = Config::from_yaml(&yaml, vars).unwrap_or_else(|e| panic!("{e}"));
        let built = l.config.build().unwrap_or_else(|e| panic!("{e}"));
        let app = router::app(&l.config, &built, Metrics::new(&built.authenticator));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(server::serve(
            listener,
            app,
            server::Limits::default(),
            std::future::pending(),
        ));
        let res = client()
            .get(format!("http://{addr}/authenticate"))
            .header("authorization", basic("alice", password))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200, "{password}");
        assert!(
            !l.warnings.iter().any(|w| w.contains(password)),
            "{:?}",
            l.warnings
        );
    }
    // A secret that is not text is refused without quoting it.
    let e = Config::from_yaml(
        &MINIMAL.replace("password: alicepass", "password: [98765]"),
        env(&[]),
    )
    .unwrap_err()
    .to_string();
    assert!(e.contains("providers[0].users[0].password"), "{e}");
    assert!(!e.contains("98765"), "{e}");
}
