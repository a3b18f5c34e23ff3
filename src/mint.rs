//! Minting a short-lived JWT for the backend from an authenticated [`Principal`].
//!
//! HS256 with a shared secret keeps auth-o-tron's claims (`sub` = `{realm}-{username}`, `iss`,
//! `exp`, `iat`, `roles`, `username`, `scopes`, `realm`, `attributes`). ES256 and EdDSA add
//! `kid`, `aud`, `nbf` (backdated 5 s for clock skew) and a unique `jti`, and publish their public
//! keys (current and previous) as a JWKS document.
//!
//! `exp` is min(now + lifetime, the credential's expiry, an `exp` attribute), and a token that
//! would already be expired is refused rather than minted. Through a [`MintCache`] (the layer
//! keeps one beside every cached principal) a minted token is reused for the same principal
//! until 80 % of its lifetime has passed, unless the signing key changed.

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use http::HeaderValue;
use jsonwebtoken::jwk::{Jwk, JwkSet, KeyAlgorithm, PublicKeyUse};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde::Serialize;

use crate::user::{Principal, Scopes, User};

/// Minimum HS256 secret length (RFC 8725 §3.5: at least the hash output size).
pub const MIN_HMAC_SECRET_BYTES: usize = 32;

/// How far `nbf` is set before `iat`, for backends whose clock runs a little behind.
const NBF_BACKDATE: u64 = 5;

/// Why a key could not be loaded or a token not minted.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum MintError {
    /// The HMAC secret is shorter than 32 bytes.
    WeakSecret(usize),
    /// The key file could not be read as the expected PEM key.
    BadKey(String),
    /// The key id is empty (asymmetric keys need one).
    MissingKid,
    /// The lifetime is zero or longer than a day.
    BadLifetime,
    /// The credential (or an `exp` attribute) has already expired: nothing to mint.
    Expired,
    /// Signing failed.
    Signing(String),
}

impl fmt::Display for MintError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MintError::WeakSecret(n) => write!(
                f,
                "the HS256 secret has {n} bytes; at least {MIN_HMAC_SECRET_BYTES} are required"
            ),
            MintError::BadKey(why) => write!(f, "signing key: {why}"),
            MintError::MissingKid => f.write_str("asymmetric signing keys need a non-empty kid"),
            MintError::BadLifetime => f.write_str("token lifetime must be between 1 s and 24 h"),
            MintError::Expired => f.write_str("the credential has expired"),
            MintError::Signing(why) => write!(f, "signing failed: {why}"),
        }
    }
}

impl std::error::Error for MintError {}

static NEXT_ID: AtomicU64 = AtomicU64::new(1);

/// A signing key with its algorithm and (for asymmetric keys) its public JWK.
#[derive(Clone)]
pub struct SigningKey {
    id: u64,
    alg: Algorithm,
    kid: Option<String>,
    key: EncodingKey,
    public: Option<Jwk>,
}

impl fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SigningKey")
            .field("alg", &self.alg)
            .field("kid", &self.kid)
            .finish_non_exhaustive()
    }
}

impl SigningKey {
    /// An HS256 key. Secrets shorter than 32 bytes are refused.
    pub fn hs256(secret: &[u8]) -> Result<Self, MintError> {
        if secret.len() < MIN_HMAC_SECRET_BYTES {
            return Err(MintError::WeakSecret(secret.len()));
        }
        Self::hs256_weak(secret)
    }

    /// An HS256 key from a secret of any non-empty length, for secrets shared with backends
    /// that cannot change at once (a migration from ecmwf/auth-o-tron, which accepts short
    /// secrets). A short secret can be brute-forced offline from one minted token: rotate it.
    pub fn hs256_weak(secret: &[u8]) -> Result<Self, MintError> {
        if secret.is_empty() {
            return Err(MintError::WeakSecret(0));
        }
        let key = EncodingKey::from_secret(secret).map_err(|e| MintError::BadKey(e.to_string()))?;
        Ok(SigningKey {
            id: NEXT_ID.fetch_add(1, Ordering::Relaxed),
            alg: Algorithm::HS256,
            kid: None,
            key,
            public: None,
        })
    }

    /// An ES256 (P-256) key from a PKCS#8 or SEC1 PEM file.
    pub fn es256_pem(kid: &str, pem: &[u8]) -> Result<Self, MintError> {
        let key = EncodingKey::from_ec_pem(pem).map_err(|e| MintError::BadKey(e.to_string()))?;
        Self::asymmetric(kid, Algorithm::ES256, key)
    }

    /// An EdDSA (Ed25519) key from a PKCS#8 PEM file.
    pub fn eddsa_pem(kid: &str, pem: &[u8]) -> Result<Self, MintError> {
        let key = EncodingKey::from_ed_pem(pem).map_err(|e| MintError::BadKey(e.to_string()))?;
        Self::asymmetric(kid, Algorithm::EdDSA, key)
    }

    /// A fresh random ES256 key (for tests and demos; real deployments load a key file).
    pub fn generate_es256(kid: &str) -> Result<Self, MintError> {
        use p256::pkcs8::EncodePrivateKey;
        loop {
            let mut seed = [0u8; 32];
            getrandom::fill(&mut seed).map_err(|e| MintError::BadKey(e.to_string()))?;
            // Fails only for the zero scalar or one above the group order: draw again.
            if let Ok(secret) = p256::SecretKey::from_slice(&seed) {
                let der = secret
                    .to_pkcs8_der()
                    .map_err(|e| MintError::BadKey(e.to_string()))?;
                return Self::asymmetric(
                    kid,
                    Algorithm::ES256,
                    EncodingKey::from_ec_der(der.as_bytes()),
                );
            }
        }
    }

    /// A fresh random Ed25519 key (for tests and demos).
    pub fn generate_eddsa(kid: &str) -> Result<Self, MintError> {
        // PKCS#8 v1 wrapping of an Ed25519 seed (RFC 8410): a fixed 16-byte prefix.
        let mut der = vec![
            0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22,
            0x04, 0x20,
        ];
        let mut seed = [0u8; 32];
        getrandom::fill(&mut seed).map_err(|e| MintError::BadKey(e.to_string()))?;
        der.extend_from_slice(&seed);
        Self::asymmetric(kid, Algorithm::EdDSA, EncodingKey::from_ed_der(&der))
    }

    fn asymmetric(kid: &str, alg: Algorithm, key: EncodingKey) -> Result<Self, MintError> {
        if kid.is_empty() {
            return Err(MintError::MissingKid);
        }
        let mut jwk =
            Jwk::from_encoding_key(&key, alg).map_err(|e| MintError::BadKey(e.to_string()))?;
        jwk.common.key_id = Some(kid.to_owned());
        jwk.common.public_key_use = Some(PublicKeyUse::Signature);
        jwk.common.key_algorithm = Some(match alg {
            Algorithm::EdDSA => KeyAlgorithm::EdDSA,
            _ => KeyAlgorithm::ES256,
        });
        Ok(SigningKey {
            id: NEXT_ID.fetch_add(1, Ordering::Relaxed),
            alg,
            kid: Some(kid.to_owned()),
            key,
            public: Some(jwk),
        })
    }

    /// The algorithm.
    pub fn algorithm(&self) -> Algorithm {
        self.alg
    }

    /// The key id, for asymmetric keys.
    pub fn kid(&self) -> Option<&str> {
        self.kid.as_deref()
    }

    /// The public key as a JWK, for asymmetric keys.
    pub fn public_jwk(&self) -> Option<&Jwk> {
        self.public.as_ref()
    }
}

/// A minted token, as inserted into request extensions. `Debug` does not show it.
#[derive(Clone)]
pub struct MintedToken {
    token: Arc<str>,
    header: HeaderValue,
    expires_at: u64,
}

impl MintedToken {
    /// The compact JWT.
    pub fn as_str(&self) -> &str {
        &self.token
    }

    /// `exp`, in seconds since the epoch.
    pub fn expires_at(&self) -> u64 {
        self.expires_at
    }

    /// `Bearer <jwt>`, ready for an `Authorization` header (built once per token).
    pub fn bearer_header(&self) -> HeaderValue {
        self.header.clone()
    }
}

impl fmt::Debug for MintedToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "MintedToken([redacted], exp={})", self.expires_at)
    }
}

/// The last token minted for one principal, so later requests of that principal reuse it
/// ([`Minter::mint_cached`]). [`AuthLayer::mint`](crate::AuthLayer::mint) keeps one beside every
/// cached principal. Cheap to clone: clones share the token.
#[derive(Clone, Default)]
pub struct MintCache(Arc<Mutex<Option<Minted>>>);

impl MintCache {
    /// An empty cache.
    pub fn new() -> Self {
        Self::default()
    }
}

impl fmt::Debug for MintCache {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("MintCache([redacted])")
    }
}

/// A reusable minted token and what it was minted for.
struct Minted {
    /// Checked on reuse: a cache handed another principal mints anew instead of answering with
    /// someone else's token.
    principal: Principal,
    minter: u64,
    key: u64,
    refresh_at: u64,
    token: MintedToken,
}

#[derive(Serialize)]
struct Claims<'a> {
    sub: String,
    iss: &'a str,
    exp: u64,
    iat: u64,
    roles: &'a [String],
    username: &'a str,
    scopes: &'a Scopes,
    realm: &'a str,
    attributes: &'a std::collections::BTreeMap<String, String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    aud: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    nbf: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    jti: Option<String>,
}

/// Turns principals into signed JWTs. Cheap to clone.
#[derive(Clone)]
pub struct Minter {
    inner: Arc<MinterInner>,
}

struct MinterInner {
    id: u64,
    issuer: String,
    audience: Option<String>,
    lifetime: Duration,
    key: SigningKey,
    previous: Vec<SigningKey>,
}

impl fmt::Debug for Minter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Minter")
            .field("issuer", &self.inner.issuer)
            .field("audience", &self.inner.audience)
            .field("lifetime", &self.inner.lifetime)
            .field("key", &self.inner.key)
            .finish_non_exhaustive()
    }
}

/// Builds a [`Minter`].
#[derive(Debug)]
#[must_use]
pub struct MinterBuilder {
    issuer: String,
    audience: Option<String>,
    lifetime: Duration,
    key: SigningKey,
    previous: Vec<SigningKey>,
}

impl MinterBuilder {
    /// `aud` of asymmetric tokens (HS256 tokens keep auth-o-tron's claims and carry no `aud`).
    pub fn audience(mut self, audience: impl Into<String>) -> Self {
        self.audience = Some(audience.into());
        self
    }

    /// Maximum lifetime of a minted token. Default 60 s; at most 24 h.
    pub fn lifetime(mut self, lifetime: Duration) -> Self {
        self.lifetime = lifetime;
        self
    }

    /// A previous key whose public part stays in the JWKS during a rotation.
    pub fn previous_key(mut self, key: SigningKey) -> Self {
        self.previous.push(key);
        self
    }

    /// Builds the minter.
    pub fn build(self) -> Result<Minter, MintError> {
        if self.lifetime.is_zero() || self.lifetime > Duration::from_secs(86_400) {
            return Err(MintError::BadLifetime);
        }
        Ok(Minter {
            inner: Arc::new(MinterInner {
                id: NEXT_ID.fetch_add(1, Ordering::Relaxed),
                issuer: self.issuer,
                audience: self.audience,
                lifetime: self.lifetime,
                key: self.key,
                previous: self.previous,
            }),
        })
    }
}

fn unix(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

impl Minter {
    /// A minter issuing tokens as `issuer`, signed with `key`.
    pub fn builder(issuer: impl Into<String>, key: SigningKey) -> MinterBuilder {
        MinterBuilder {
            issuer: issuer.into(),
            audience: None,
            lifetime: Duration::from_secs(60),
            key,
            previous: Vec::new(),
        }
    }

    /// The current signing key.
    pub fn key(&self) -> &SigningKey {
        &self.inner.key
    }

    /// The JWKS document of the public keys (current first, then previous). Empty for HS256.
    pub fn jwks(&self) -> JwkSet {
        let keys = std::iter::once(&self.inner.key)
            .chain(&self.inner.previous)
            .filter_map(|k| k.public.clone())
            .collect();
        JwkSet { keys }
    }

    /// A freshly signed token for `principal`.
    pub fn mint(&self, principal: &Principal) -> Result<MintedToken, MintError> {
        let now = unix(SystemTime::now());
        self.sign(principal.user(), principal.expires_at().map(unix), now)
    }

    /// A token for `principal`, reusing the one in `cache` while it is fresh (minted by this
    /// minter, with its current key, for this very principal, less than 80 % of its lifetime
    /// ago); otherwise a new one, which `cache` then keeps.
    pub fn mint_cached(
        &self,
        principal: &Principal,
        cache: &MintCache,
    ) -> Result<MintedToken, MintError> {
        self.mint_at(principal, cache, SystemTime::now())
    }

    pub(crate) fn mint_at(
        &self,
        principal: &Principal,
        cache: &MintCache,
        now: SystemTime,
    ) -> Result<MintedToken, MintError> {
        let inner = &*self.inner;
        let now_s = unix(now);
        if let Some(m) = cache
            .0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .as_ref()
            && m.minter == inner.id
            && m.key == inner.key.id
            && now_s < m.refresh_at
            && m.principal.same(principal)
        {
            return Ok(m.token.clone());
        }
        let token = self.sign(principal.user(), principal.expires_at().map(unix), now_s)?;
        let lifetime = token.expires_at - now_s;
        let minted = Minted {
            principal: principal.clone(),
            minter: inner.id,
            key: inner.key.id,
            refresh_at: now_s + (lifetime * 4 / 5).max(1).min(lifetime),
            token: token.clone(),
        };
        *cache.0.lock().unwrap_or_else(PoisonError::into_inner) = Some(minted);
        Ok(token)
    }

    fn sign(
        &self,
        user: &User,
        credential_exp: Option<u64>,
        now: u64,
    ) -> Result<MintedToken, MintError> {
        let inner = &*self.inner;
        let mut exp = now.saturating_add(inner.lifetime.as_secs().max(1));
        if let Some(c) = credential_exp {
            exp = exp.min(c);
        }
        if let Some(a) = user
            .attributes
            .get("exp")
            .and_then(|v| v.parse::<i64>().ok())
        {
            exp = exp.min(u64::try_from(a).unwrap_or(0));
        }
        if exp <= now {
            return Err(MintError::Expired);
        }
        let asymmetric = inner.key.alg != Algorithm::HS256;
        let claims = Claims {
            sub: format!("{}-{}", user.realm, user.username),
            iss: &inner.issuer,
            exp,
            iat: now,
            roles: &user.roles,
            username: &user.username,
            scopes: &user.scopes,
            realm: &user.realm,
            attributes: &user.attributes,
            aud: if asymmetric {
                inner.audience.as_deref()
            } else {
                None
            },
            nbf: asymmetric.then(|| now.saturating_sub(NBF_BACKDATE)),
            jti: asymmetric.then(random_jti),
        };
        let mut header = Header::new(inner.key.alg);
        header.kid = inner.key.kid.clone();
        let token = jsonwebtoken::encode(&header, &claims, &inner.key.key)
            .map_err(|e| MintError::Signing(e.to_string()))?;
        let mut bearer = HeaderValue::from_str(&format!("Bearer {token}"))
            .map_err(|_| MintError::Signing("token is not visible ASCII".into()))?;
        bearer.set_sensitive(true);
        Ok(MintedToken {
            token: token.into(),
            header: bearer,
            expires_at: exp,
        })
    }
}

fn random_jti() -> String {
    let mut b = [0u8; 16];
    let _ = getrandom::fill(&mut b);
    b.iter().map(|x| format!("{x:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use jsonwebtoken::{DecodingKey, Validation};

    fn principal(exp: Option<SystemTime>) -> Principal {
        let user = User::new("alice", "local")
            .with_roles(["admin"])
            .with_attribute("team", "x");
        Principal::new(user, "p", exp)
    }

    #[test]
    fn hs256_has_auth_o_tron_claims() {
        let secret = b"0123456789abcdef0123456789abcdef";
        let m = Minter::builder("aot", SigningKey::hs256(secret).unwrap())
            .lifetime(Duration::from_secs(3600))
            .build()
            .unwrap();
        let t = m.mint(&principal(None)).unwrap();
        let mut v = Validation::new(Algorithm::HS256);
        v.validate_aud = false;
        let data = jsonwebtoken::decode::<serde_json::Value>(
            t.as_str(),
            &DecodingKey::from_secret(secret).unwrap(),
            &v,
        )
        .unwrap();
        let c = data.claims;
        assert_eq!(c["sub"], "local-alice");
        assert_eq!(c["iss"], "aot");
        assert_eq!(c["username"], "alice");
        assert_eq!(c["realm"], "local");
        assert_eq!(c["roles"], serde_json::json!(["admin"]));
        assert_eq!(c["scopes"], serde_json::json!({}));
        assert_eq!(c["attributes"]["team"], "x");
        assert!(c.get("aud").is_none() && c.get("jti").is_none());
        assert_eq!(
            c["exp"].as_u64().unwrap() - c["iat"].as_u64().unwrap(),
            3600
        );
    }

    #[test]
    fn weak_secrets_and_bad_lifetimes_are_refused() {
        assert_eq!(
            SigningKey::hs256(b"change-me").unwrap_err(),
            MintError::WeakSecret(9)
        );
        let k = SigningKey::hs256(&[7; 32]).unwrap();
        assert_eq!(
            Minter::builder("i", k)
                .lifetime(Duration::ZERO)
                .build()
                .unwrap_err(),
            MintError::BadLifetime
        );
    }

    #[test]
    fn exp_is_capped_by_the_credential_and_never_in_the_past() {
        let m = Minter::builder("i", SigningKey::hs256(&[1; 32]).unwrap())
            .lifetime(Duration::from_secs(600))
            .build()
            .unwrap();
        let now = SystemTime::now();
        let cache = MintCache::new();
        let t = m
            .mint_at(&principal(Some(now + Duration::from_secs(30))), &cache, now)
            .unwrap();
        assert_eq!(t.expires_at(), unix(now) + 30);
        assert_eq!(
            m.mint_at(&principal(Some(now - Duration::from_secs(1))), &cache, now)
                .unwrap_err(),
            MintError::Expired
        );
        let p = Principal::new(User::new("a", "r").with_attribute("exp", "1"), "p", None);
        assert_eq!(m.mint(&p).unwrap_err(), MintError::Expired);
    }

    #[test]
    fn es256_and_eddsa_verify_against_their_jwks() {
        for key in [
            SigningKey::generate_es256("k1").unwrap(),
            SigningKey::generate_eddsa("k2").unwrap(),
        ] {
            let alg = key.algorithm();
            let m = Minter::builder("iss", key)
                .audience("backend")
                .build()
                .unwrap();
            let t = m.mint(&principal(None)).unwrap();
            let header = jsonwebtoken::decode_header(t.as_str()).unwrap();
            let jwks = m.jwks();
            let jwk = jwks.find(header.kid.as_deref().unwrap()).unwrap();
            let mut v = Validation::new(alg);
            v.set_audience(&["backend"]);
            v.set_issuer(&["iss"]);
            v.validate_nbf = true;
            let c = jsonwebtoken::decode::<serde_json::Value>(
                t.as_str(),
                &DecodingKey::from_jwk(jwk).unwrap(),
                &v,
            )
            .unwrap()
            .claims;
            assert_eq!(c["aud"], "backend");
            assert_eq!(c["jti"].as_str().unwrap().len(), 32);
            assert!(c["nbf"].as_u64().unwrap() < c["iat"].as_u64().unwrap());
        }
    }

    #[test]
    fn tokens_are_reused_until_most_of_the_lifetime_passed_or_the_key_changes() {
        let key = SigningKey::generate_es256("a").unwrap();
        let m = Minter::builder("i", key.clone())
            .lifetime(Duration::from_secs(100))
            .build()
            .unwrap();
        let p = principal(None);
        let cache = MintCache::new();
        let now = SystemTime::now();
        let t1 = m.mint_at(&p, &cache, now).unwrap();
        assert_eq!(
            t1.as_str(),
            m.mint_at(&p, &cache, now + Duration::from_secs(79))
                .unwrap()
                .as_str()
        );
        // Another principal handed the same cache gets its own token, never this one.
        let other = Principal::new(User::new("mallory", "local"), "p", None);
        let t_other = m.mint_at(&other, &cache, now).unwrap();
        assert_ne!(t1.as_str(), t_other.as_str());
        assert_ne!(
            t_other.as_str(),
            m.mint_at(&p, &cache, now + Duration::from_secs(1))
                .unwrap()
                .as_str()
        );
        let t1 = m.mint_at(&p, &cache, now).unwrap();
        assert_ne!(
            t1.as_str(),
            m.mint_at(&p, &cache, now + Duration::from_secs(81))
                .unwrap()
                .as_str()
        );
        let rotated = Minter::builder("i", SigningKey::generate_es256("b").unwrap())
            .previous_key(key)
            .build()
            .unwrap();
        let t2 = rotated.mint_at(&p, &cache, now).unwrap();
        assert_eq!(
            jsonwebtoken::decode_header(t2.as_str())
                .unwrap()
                .kid
                .as_deref(),
            Some("b")
        );
        assert_eq!(rotated.jwks().keys.len(), 2);
    }
}
