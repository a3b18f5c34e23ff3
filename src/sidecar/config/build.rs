//! Turning a checked [`Config`] into the running parts: authenticator, minter, rules.

use std::time::Duration;

use super::load::ConfigError;
use super::{AugmenterConfig, Config, MintAlgorithm, OneOrMany, ProviderConfig};
use crate::Authenticator;
use crate::augment::{
    Augmentation, LdapAugmenter, LdapSettings, PlainAdvancedAugmenter, PlainAugmenter,
};
use crate::mint::{Minter, SigningKey};
use crate::provider::PlainProvider;
use crate::provider::http::HttpClient;
use crate::provider::introspection::ClientAuth;
use crate::provider::jwt::JwtConfigError;
use crate::provider::{
    EcmwfApiProvider, EfasApiProvider, IntrospectionProvider, IntrospectionSettings, JwtProvider,
    JwtSettings, KeySource, OfflineEndpoints, OfflineProvider, OfflineSettings,
    TokenGeneratorProvider, TokenGeneratorSettings,
};
use crate::sidecar::peers::TrustedProxies;
use crate::sidecar::rules::Rules;

/// The running parts of a configuration.
#[derive(Debug, Clone)]
pub struct Built {
    /// The pipeline.
    pub authenticator: Authenticator,
    /// The minter of `/authenticate` tokens.
    pub minter: Minter,
    /// Path rules; every matching rule must allow.
    pub rules: Rules,
    /// Who may ask for decisions.
    pub trusted: TrustedProxies,
    /// API tokens, when `tokens.enabled`.
    pub tokens: Option<super::BuiltTokens>,
}

fn read_file(key: &str, path: &std::path::Path) -> Result<Vec<u8>, ConfigError> {
    std::fs::read(path)
        .map_err(|e| ConfigError::key(key, format!("cannot read {}: {e}", path.display())))
}

impl Config {
    /// Builds the authenticator, minter and rules.
    pub fn build(&self) -> Result<Built, ConfigError> {
        let http = HttpClient::builder()
            .connect_timeout(Duration::from_millis(self.http.connect_timeout_ms))
            .timeout(Duration::from_millis(self.http.timeout_ms))
            .max_body(self.http.max_body_bytes)
            // URLs the operator wrote may be plain HTTP (in-cluster services often are);
            // `warnings` names them. URLs learned at run time are still held to https when
            // their source was https, and redirects stay off.
            .allow_http(self.http.allow_http || self.plain_http_urls().next().is_some())
            .build()
            .map_err(|e| ConfigError::key("http", e))?;
        let mut builder = Authenticator::builder()
            .timeout(Duration::from_millis(self.auth.timeout_in_ms))
            .cache_capacity(self.cache.capacity);
        if self.cache.negative_ttl_seconds > 0 {
            builder = builder.negative_cache(
                Duration::from_secs(self.cache.negative_ttl_seconds),
                self.cache.negative_capacity,
            );
        }
        for (i, p) in self.providers.iter().enumerate() {
            match p {
                ProviderConfig::Plain {
                    name, realm, users, ..
                } => {
                    let mut provider = PlainProvider::new(name.clone(), realm.clone());
                    for (j, u) in users.iter().enumerate() {
                        let key = format!("providers[{i}].users[{j}]");
                        provider = match (&u.password_hash, &u.password) {
                            (Some(hash), _) => {
                                provider.with_user_hash(&u.username, hash, u.roles.iter().cloned())
                            }
                            (None, Some(pw)) => provider.with_user_password(
                                &u.username,
                                pw.expose(),
                                u.roles.iter().cloned(),
                            ),
                            (None, None) => {
                                return Err(ConfigError::key(key, "needs `password_hash`"));
                            }
                        }
                        .map_err(|e| ConfigError::key(key, e.to_string()))?;
                    }
                    builder = builder.provider(provider);
                }
                ProviderConfig::Jwt {
                    name,
                    realm,
                    cert_uri,
                    issuer,
                    audience,
                    algorithms,
                    leeway,
                    typ,
                    username_claim,
                    roles_claim,
                    ..
                } => {
                    let key = |k: &str| format!("providers[{i}].{k}");
                    let mut settings = JwtSettings {
                        issuer: issuer.clone(),
                        audience: audience.as_ref().map(OneOrMany::to_vec),
                        typ: typ.clone(),
                        username_claim: username_claim.as_ref().map(OneOrMany::to_vec),
                        roles_claim: roles_claim.clone(),
                        ..JwtSettings::default()
                    };
                    if let Some(l) = leeway {
                        settings.leeway = *l;
                    }
                    if let Some(algs) = algorithms {
                        settings.algorithms = algs
                            .iter()
                            .map(|a| {
                                a.parse::<jsonwebtoken::Algorithm>().map_err(|_| {
                                    ConfigError::key(
                                        key("algorithms"),
                                        format!("{a:?} is not an algorithm"),
                                    )
                                })
                            })
                            .collect::<Result<_, _>>()?;
                    }
                    let source = match (cert_uri, issuer) {
                        (Some(uri), _) => KeySource::Uri(uri.clone()),
                        (None, Some(iss)) => KeySource::Discovery(iss.clone()),
                        (None, None) => {
                            return Err(ConfigError::key(
                                key("cert_uri"),
                                "give `cert_uri` or `issuer`",
                            ));
                        }
                    };
                    let p = JwtProvider::new(
                        name.clone(),
                        realm.clone(),
                        source,
                        http.clone(),
                        settings,
                    )
                    .map_err(|e| {
                        let k = match e {
                            JwtConfigError::Leeway => "leeway",
                            JwtConfigError::Algorithms => "algorithms",
                            _ if cert_uri.is_some() => "cert_uri",
                            _ => "issuer",
                        };
                        ConfigError::key(key(k), e.to_string())
                    })?;
                    builder = builder.provider(p);
                }
                ProviderConfig::Introspection {
                    name,
                    realm,
                    endpoint,
                    client_id,
                    client_secret,
                    client_auth,
                    audience,
                    issuer,
                    ..
                } => {
                    let auth = match client_auth.as_deref() {
                        None | Some("basic") => ClientAuth::Basic,
                        Some("form") => ClientAuth::Form,
                        Some(other) => {
                            return Err(ConfigError::key(
                                format!("providers[{i}].client_auth"),
                                format!("{other:?} is not `basic` or `form`"),
                            ));
                        }
                    };
                    let settings = IntrospectionSettings {
                        endpoint: endpoint.clone(),
                        client_id: client_id.clone(),
                        client_secret: client_secret.clone(),
                        client_auth: auth,
                        audience: audience.as_ref().map(OneOrMany::to_vec),
                        issuer: issuer.clone(),
                        cache_ttl: Duration::from_secs(60),
                    };
                    let p = IntrospectionProvider::new(
                        name.clone(),
                        realm.clone(),
                        settings,
                        http.clone(),
                    )
                    .map_err(|e| ConfigError::key(format!("providers[{i}].endpoint"), e))?;
                    builder = builder.provider(p);
                }
                ProviderConfig::EcmwfApi {
                    name,
                    realm,
                    uri,
                    check_email,
                    ..
                } => {
                    let p = EcmwfApiProvider::new(
                        name.clone(),
                        realm.clone(),
                        uri.clone(),
                        http.clone(),
                    )
                    .map_err(|e| ConfigError::key(format!("providers[{i}].uri"), e))?
                    .check_email(*check_email);
                    builder = builder.provider(p);
                }
                ProviderConfig::EfasApi {
                    name, realm, uri, ..
                } => {
                    let p = EfasApiProvider::new(
                        name.clone(),
                        realm.clone(),
                        uri.clone(),
                        http.clone(),
                    )
                    .map_err(|e| ConfigError::key(format!("providers[{i}].uri"), e))?;
                    builder = builder.provider(p);
                }
                ProviderConfig::OpenidOffline {
                    name,
                    realm,
                    cert_uri,
                    public_client_id,
                    private_client_id,
                    private_client_secret,
                    iam_url,
                    issuer,
                    audience,
                    ..
                } => {
                    let settings = OfflineSettings {
                        endpoints: OfflineEndpoints::Keycloak {
                            iam_url: iam_url.clone(),
                            realm: realm.clone(),
                            cert_uri: cert_uri.clone(),
                        },
                        public_client_id: public_client_id.clone(),
                        private_client_id: private_client_id.clone(),
                        private_client_secret: private_client_secret.clone(),
                        jwt: JwtSettings {
                            issuer: issuer.clone(),
                            audience: audience.as_ref().map(OneOrMany::to_vec),
                            ..JwtSettings::default()
                        },
                        max_chains: self.cache.capacity,
                    };
                    let p =
                        OfflineProvider::new(name.clone(), realm.clone(), settings, http.clone())
                            .map_err(|e| ConfigError::key(format!("providers[{i}].iam_url"), e))?;
                    builder = builder.provider(p);
                }
                ProviderConfig::EcmwfTokenGenerator {
                    name,
                    realm,
                    cert_uri,
                    client_id,
                    client_secret,
                    token_generator_url,
                    issuer,
                    audience,
                    ..
                } => {
                    let settings = TokenGeneratorSettings {
                        url: token_generator_url.clone(),
                        cert_uri: cert_uri.clone(),
                        client_id: client_id.clone(),
                        client_secret: client_secret.clone(),
                        jwt: JwtSettings {
                            issuer: issuer.clone(),
                            audience: audience.as_ref().map(OneOrMany::to_vec),
                            ..JwtSettings::default()
                        },
                    };
                    let p = TokenGeneratorProvider::new(
                        name.clone(),
                        realm.clone(),
                        settings,
                        http.clone(),
                    )
                    .map_err(|e| {
                        ConfigError::key(format!("providers[{i}].token_generator_url"), e)
                    })?;
                    builder = builder.provider(p);
                }
            }
        }
        for p in &self.providers {
            if let Some(limit) = p.max_concurrent_calls() {
                builder = builder.provider_max_concurrent_calls(p.describe().0, limit);
            }
        }
        for (i, a) in self.augmenters.iter().enumerate() {
            builder = match a {
                AugmenterConfig::Plain { name, realm, roles } => builder.augmenter(
                    PlainAugmenter::new(name.clone(), realm.clone(), roles.clone()),
                ),
                AugmenterConfig::PlainAdvanced {
                    name,
                    realm,
                    matches,
                    augment,
                } => builder.augmenter(PlainAdvancedAugmenter::new(
                    name.clone(),
                    realm.clone(),
                    matches.username.clone(),
                    matches.role.clone(),
                    Augmentation {
                        roles: augment.roles.clone(),
                        attributes: augment.attributes.clone(),
                    },
                )),
                AugmenterConfig::Ldap {
                    name,
                    realm,
                    uri,
                    search_base,
                    ldap_password,
                    bind_dn,
                    filter,
                    filters,
                } => {
                    let bind_dn = bind_dn.clone().ok_or_else(|| {
                        ConfigError::key(
                            format!("augmenters[{i}].bind_dn"),
                            "required to bind to the directory",
                        )
                    })?;
                    let settings = LdapSettings {
                        uri: uri.clone(),
                        search_base: search_base.clone(),
                        bind_dn,
                        password: ldap_password.clone(),
                        filter: filter.clone(),
                        filters: filters.clone(),
                        timeout: Duration::from_millis(self.auth.timeout_in_ms),
                        cache_ttl: Duration::from_secs(120),
                    };
                    let a = LdapAugmenter::new(name.clone(), realm.clone(), settings)
                        .map_err(|e| ConfigError::key(format!("augmenters[{i}]"), e))?;
                    builder.augmenter(a)
                }
            };
        }
        let catalogue = super::tokens::catalogue(self.services.as_deref().unwrap_or_default())?;
        let tokens = match &self.tokens {
            Some(t) if t.enabled => {
                let (tokens, provider) = super::BuiltTokens::new(t, catalogue.clone())?;
                builder = builder.provider(provider);
                Some(tokens)
            }
            _ => None,
        };
        let authenticator = builder
            .build()
            .map_err(|e| ConfigError::key("providers", e.to_string()))?;
        let minter = self.minter(&catalogue)?;
        let rules = Rules::compile(&self.rules, self.server.ambiguous_paths)?;
        let trusted = TrustedProxies::parse(self.server.trusted_proxies.as_deref())?;
        Ok(Built {
            authenticator,
            minter,
            rules,
            trusted,
            tokens,
        })
    }

    fn minter(&self, catalogue: &crate::token::Catalogue) -> Result<Minter, ConfigError> {
        let jwt = &self.jwt;
        let key = match jwt.algorithm {
            MintAlgorithm::HS256 => {
                let secret = match (&jwt.secret, &jwt.secret_file) {
                    (Some(s), _) => s.expose().as_bytes().to_vec(),
                    (None, Some(path)) => {
                        let mut s = read_file("jwt.secret_file", path)?;
                        while s.last().is_some_and(|b| *b == b'\n' || *b == b'\r') {
                            s.pop();
                        }
                        s
                    }
                    (None, None) => {
                        return Err(ConfigError::key(
                            "jwt.secret",
                            "required for HS256 (or `jwt.secret_file`, or AOT_JWT__SECRET)",
                        ));
                    }
                };
                // Short secrets start (auth-o-tron accepts them and every backend shares the
                // secret); `warnings` says why and how to rotate.
                SigningKey::hs256_weak(&secret)
                    .map_err(|e| ConfigError::key("jwt.secret", e.to_string()))?
            }
            alg => {
                let path = jwt.key_file.as_ref().ok_or_else(|| {
                    ConfigError::key("jwt.key_file", format!("required for {alg:?}"))
                })?;
                let kid = jwt
                    .kid
                    .as_deref()
                    .ok_or_else(|| ConfigError::key("jwt.kid", format!("required for {alg:?}")))?;
                load_key(alg, kid, &read_file("jwt.key_file", path)?)
                    .map_err(|e| ConfigError::key("jwt.key_file", e.to_string()))?
            }
        };
        let mut builder = Minter::builder(jwt.iss.clone(), key)
            .lifetime(Duration::from_secs(jwt.exp as u64))
            .all_scopes(catalogue.all());
        if let Some(aud) = &jwt.aud {
            builder = builder.audience(aud.clone());
        }
        for (i, p) in jwt.previous_keys.iter().enumerate() {
            let key = format!("jwt.previous_keys[{i}]");
            let pem = read_file(&key, &p.key_file)?;
            builder = builder.previous_key(
                load_key(jwt.algorithm, &p.kid, &pem)
                    .map_err(|e| ConfigError::key(key, e.to_string()))?,
            );
        }
        builder
            .build()
            .map_err(|e| ConfigError::key("jwt.exp", e.to_string()))
    }
}

fn load_key(
    alg: MintAlgorithm,
    kid: &str,
    pem: &[u8],
) -> Result<SigningKey, crate::mint::MintError> {
    match alg {
        MintAlgorithm::EdDSA => SigningKey::eddsa_pem(kid, pem),
        _ => SigningKey::es256_pem(kid, pem),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn every_auth_o_tron_provider_type_builds() {
        let yaml = r#"
version: "2.0.0"
server: {port: 8080}
providers:
  - {type: plain, name: local, realm: local, users: [{username: a, password: b}]}
  - {type: jwt, name: kc, realm: kc, cert_uri: "https://idp.example/certs", iam_realm: x}
  - {type: ecmwf-api, name: ecmwf, realm: ecmwf, uri: "https://api.ecmwf.int/v1"}
  - {type: efas-api, name: efas, realm: efas, uri: "https://efas.example/user"}
  - {type: openid-offline, name: desp, realm: desp, cert_uri: "https://iam.example/certs", public_client_id: p,
     private_client_id: q, private_client_secret: s, iam_url: "https://iam.example"}
  - {type: ecmwf-token-generator, name: tg, realm: tg, cert_uri: "https://iam.example/certs", client_id: c,
     client_secret: s, token_generator_url: "https://tg.example"}
  - {type: introspection, name: rfc7662, realm: o, endpoint: "https://as.example/introspect", client_id: c, client_secret: s}
jwt: {iss: i, exp: 60, secret: 0123456789abcdef0123456789abcdef}
"#;
        let config = Config::from_yaml(yaml, Vec::<(String, String)>::new())
            .unwrap()
            .config;
        let built = config.build().unwrap();
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
                "ecmwf-token-generator",
                "introspection"
            ]
        );
        // Plain HTTP written by the operator starts, with a warning naming the key.
        let plain = yaml
            .replace("https://api.ecmwf.int/v1", "http://api.ecmwf.int/v1")
            .replace("https://idp.example/certs", "http://keycloak:8080/certs");
        let config = Config::from_yaml(&plain, Vec::<(String, String)>::new())
            .unwrap()
            .config;
        config.build().unwrap();
        let w = super::super::warnings(&config);
        assert!(
            w.iter()
                .any(|l| l.starts_with("providers[2].uri is plain HTTP")),
            "{w:?}"
        );
        assert!(
            w.iter()
                .any(|l| l.starts_with("providers[1].cert_uri is plain HTTP")),
            "{w:?}"
        );
        // Anything else is refused, naming the key that is wrong.
        for (from, to, key) in [
            (
                "https://api.ecmwf.int/v1",
                "ftp://api.ecmwf.int/v1",
                "providers[2].uri",
            ),
            (
                "https://idp.example/certs",
                "ftp://idp.example/certs",
                "providers[1].cert_uri",
            ),
        ] {
            let e = Config::from_yaml(&yaml.replace(from, to), Vec::<(String, String)>::new())
                .unwrap()
                .config
                .build()
                .unwrap_err();
            assert!(
                e.to_string().starts_with(&format!("config key `{key}`")),
                "{e}"
            );
        }
    }
}
