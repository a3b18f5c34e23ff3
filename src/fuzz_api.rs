//! Entry points for the `cargo fuzz` targets in `fuzz/` (feature `fuzzing`).
//!
//! Internal: not part of the public API, no stability guarantee, changes in any release. The
//! wrappers call the crate's own parsing and mapping code, the parts that run after a remote
//! answer or a header arrived, with no I/O; the targets feed them arbitrary bytes.

use std::time::Duration;

use serde_json::{Map, Value};

use crate::augment::{LdapAugmenter, LdapSettings};
use crate::provider::BuildError;
use crate::provider::client::{Fetched, HttpClient};
use crate::provider::introspection::ClientAuth;
use crate::provider::{
    EcmwfApiProvider, EfasApiProvider, Identity, IntrospectionProvider, IntrospectionSettings,
    JwtProvider, JwtSettings, KeySource, ProviderError,
};

pub use bytes::Bytes;
pub use jsonwebtoken::Algorithm;
pub use ldap3::ResultEntry;
pub use ldap3::asn1;

/// The provider name the wrappers configure (it keys the scopes).
pub const PROVIDER: &str = "fuzz";
/// The realm the wrappers configure.
pub const REALM: &str = "fuzzrealm";

/// A client that is never used to send anything: providers need one to be built.
fn client() -> HttpClient {
    HttpClient::builder()
        .build()
        .expect("a default client always builds")
}

/// The `jwt` provider's checks that need no key: [`JwtProvider`] with a key store that is
/// never consulted.
#[derive(Debug)]
pub struct Jwt(JwtProvider);

impl Jwt {
    /// A provider with `settings` (`None` if they are refused, e.g. an HMAC algorithm).
    pub fn new(settings: JwtSettings) -> Option<Self> {
        let source = KeySource::Uri("https://fuzz.invalid/jwks".into());
        JwtProvider::new(PROVIDER, REALM, source, client(), settings)
            .ok()
            .map(Jwt)
    }

    /// Shape, header and unverified-claims checks; on success the algorithm the key lookup
    /// would use.
    pub fn unverified_checks(&self, token: &str) -> Result<Algorithm, ProviderError> {
        self.0.unverified_checks(token).map(|h| h.alg)
    }

    /// The claims → user mapping run after the signature was verified.
    pub fn map(&self, claims: Map<String, Value>) -> Result<Identity, ProviderError> {
        self.0.map(claims)
    }
}

/// One JWK: its `kid` and bound algorithm, or why it is skipped.
pub fn jwks_key(
    key: &Value,
    allowed: &[Algorithm],
) -> Result<(Option<String>, Algorithm), &'static str> {
    crate::provider::jwks::parse_key(key, allowed).map(|k| (k.kid, k.alg))
}

/// A JWKS document: the `kid` and algorithm of every usable key.
pub fn jwks_set(
    body: &[u8],
    allowed: &[Algorithm],
) -> Result<Vec<(Option<String>, Algorithm)>, ProviderError> {
    crate::provider::jwks::parse_set(body, allowed, "fuzz")
        .map(|keys| keys.into_iter().map(|k| (k.kid, k.alg)).collect())
}

/// The remote providers whose answers are parsed locally.
#[derive(Debug)]
pub struct Remote {
    introspection: IntrospectionProvider,
    introspection_checked: IntrospectionProvider,
    ecmwf: EcmwfApiProvider,
    ecmwf_email: EcmwfApiProvider,
    efas: EfasApiProvider,
}

/// The audience and issuer the checked introspection provider requires.
pub const AUDIENCE: &str = "fuzz-aud";
/// See [`AUDIENCE`].
pub const ISSUER: &str = "https://fuzz.invalid/issuer";

impl Remote {
    /// Builds the providers (no I/O).
    pub fn new() -> Self {
        let c = client();
        let settings =
            |audience: Option<Vec<String>>, issuer: Option<String>| IntrospectionSettings {
                endpoint: "https://fuzz.invalid/introspect".into(),
                client_id: "c".into(),
                client_secret: "s".into(),
                client_auth: ClientAuth::Basic,
                audience,
                issuer,
                cache_ttl: Duration::from_secs(60),
            };
        let introspection =
            IntrospectionProvider::new(PROVIDER, REALM, settings(None, None), c.clone())
                .expect("https endpoint");
        let introspection_checked = IntrospectionProvider::new(
            PROVIDER,
            REALM,
            settings(Some(vec![AUDIENCE.into()]), Some(ISSUER.into())),
            c.clone(),
        )
        .expect("https endpoint");
        let ecmwf = EcmwfApiProvider::new(PROVIDER, REALM, "https://fuzz.invalid/v1", c.clone())
            .expect("https uri");
        let ecmwf_email = ecmwf.clone().check_email(true);
        let efas =
            EfasApiProvider::new(PROVIDER, REALM, "https://fuzz.invalid/efas", c).expect("uri");
        Remote {
            introspection,
            introspection_checked,
            ecmwf,
            ecmwf_email,
            efas,
        }
    }

    /// An RFC 7662 answer; `checked`: with a required audience and issuer.
    pub fn introspection(&self, doc: &Value, checked: bool) -> Result<Identity, ProviderError> {
        if checked {
            self.introspection_checked.answer(doc)
        } else {
            self.introspection.answer(doc)
        }
    }

    /// A `who-am-i` answer (status checked first, as the provider does); `email` is what an
    /// `EmailKey` credential gave.
    pub fn ecmwf(
        &self,
        res: &Fetched,
        email: Option<&str>,
        check_email: bool,
    ) -> Result<Identity, ProviderError> {
        res.check_status("who-am-i", &[401, 403], "Invalid API token")?;
        if check_email {
            self.ecmwf_email.answer(res, email)
        } else {
            self.ecmwf.answer(res, email)
        }
    }

    /// An EFAS user-details answer (status checked first).
    pub fn efas(&self, res: &Fetched) -> Result<Identity, ProviderError> {
        res.check_status("EFAS user details", &[401, 403], "Invalid API token")?;
        self.efas.answer(res)
    }
}

impl Default for Remote {
    fn default() -> Self {
        Remote::new()
    }
}

/// `openid-offline`: the introspection answer for a refresh token (the provider's steps: status,
/// JSON, `active`, the exact scope word `offline_access`).
pub fn offline_introspection(res: &Fetched) -> Result<(), ProviderError> {
    res.check_status("introspection", &[], "")?;
    let doc: Value = res.json("introspection")?;
    crate::provider::client::require_active(&doc, "introspection", "refresh token is not active")?;
    let scope = doc.get("scope").and_then(Value::as_str).unwrap_or("");
    if crate::provider::offline::word(scope, "offline_access") {
        Ok(())
    } else {
        Err(ProviderError::invalid("not an offline_access token"))
    }
}

/// `ecmwf-token-generator`: the `validate-token` answer (status, JSON, `active`).
pub fn token_generator_validate(res: &Fetched) -> Result<(), ProviderError> {
    res.check_status("validate-token", &[], "")?;
    crate::provider::client::require_active(
        &res.json("validate-token")?,
        "validate-token",
        "token is not active",
    )
}

/// The `ldap` augmenter's mapping of search results to roles.
#[derive(Debug)]
pub struct Ldap(LdapAugmenter);

impl Ldap {
    /// An augmenter with these role filters; `Err` when `filters` is refused, as at startup.
    pub fn new(filter: Option<String>, filters: Option<Vec<String>>) -> Result<Self, BuildError> {
        LdapAugmenter::new(
            PROVIDER,
            REALM,
            LdapSettings {
                uri: "ldap://fuzz.invalid".into(),
                search_base: "dc=fuzz".into(),
                bind_dn: "cn=fuzz".into(),
                password: "p".into(),
                filter,
                filters,
                timeout: Duration::from_secs(1),
                cache_ttl: Duration::from_secs(1),
            },
        )
        .map(Ldap)
    }

    /// The roles `entries` (search result entries as the server sent them) give.
    pub fn entry_roles(&self, entries: Vec<ResultEntry>) -> Vec<String> {
        self.0.entry_roles(entries)
    }
}
