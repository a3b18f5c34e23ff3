//! A JWKS key store for the `jwt` provider.
//!
//! Keys are parsed one by one and the ones we cannot or must not use are skipped (one odd key
//! must not lock everyone out): symmetric (`oct`) keys, private material, `use` other than
//! `sig`, `key_ops` without `verify`, algorithms outside the allowlist or inconsistent with the
//! key type, RSA keys under 2048 bits. Each key is bound to exactly one algorithm.
//!
//! Readers take a snapshot (an `Arc`) and never wait on the network while keys exist. An
//! unknown `kid` triggers a refetch at most once per `min_refetch` interval, single flight; keys
//! older than `max_age` are refreshed by one background task at a time (never one per
//! request); a failed fetch keeps the last good keys.
//!
//! Until keys were loaded once (a service started before its IdP), fetches are retried sooner:
//! after 0.5 s, then twice as long each time up to `min_refetch`, by requests and by one
//! background task, so the provider becomes ready soon after the IdP does without anyone
//! asking.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, PoisonError, RwLock, Weak};
use std::time::{Duration, Instant};

use base64::Engine;
use jsonwebtoken::jwk::Jwk;
use jsonwebtoken::{Algorithm, DecodingKey};
use serde_json::Value;

use super::ProviderError;
use super::client::HttpClient;

/// At most this many keys are kept from one JWKS.
const MAX_KEYS: usize = 100;
/// First retry delay while no keys were ever loaded; doubles up to `min_refetch`.
const FIRST_RETRY: Duration = Duration::from_millis(500);

/// One usable verification key.
pub(crate) struct Key {
    pub(crate) kid: Option<String>,
    pub(crate) alg: Algorithm,
    pub(crate) key: DecodingKey,
}

/// A parsed key set and when it was fetched.
pub(crate) struct Keys {
    pub(crate) keys: Vec<Key>,
    fetched: Instant,
}

/// Where keys come from.
#[derive(Clone, Debug)]
pub enum KeySource {
    /// A JWKS URL (auth-o-tron's `cert_uri`).
    Uri(String),
    /// OIDC discovery of this issuer (`{issuer}/.well-known/openid-configuration`).
    Discovery(String),
}

fn infer_alg(kty: &str, crv: Option<&str>) -> Option<Algorithm> {
    match (kty, crv) {
        ("RSA", _) => Some(Algorithm::RS256),
        ("EC", Some("P-256")) => Some(Algorithm::ES256),
        ("EC", Some("P-384")) => Some(Algorithm::ES384),
        ("OKP", Some("Ed25519")) => Some(Algorithm::EdDSA),
        _ => None,
    }
}

fn family_ok(kty: &str, crv: Option<&str>, alg: Algorithm) -> bool {
    use Algorithm::*;
    match alg {
        RS256 | RS384 | RS512 | PS256 | PS384 | PS512 => kty == "RSA",
        ES256 => kty == "EC" && crv == Some("P-256"),
        ES384 => kty == "EC" && crv == Some("P-384"),
        EdDSA => kty == "OKP" && crv == Some("Ed25519"),
        _ => false,
    }
}

/// Parses one JWK, or says why it is skipped.
pub(crate) fn parse_key(v: &Value, allowed: &[Algorithm]) -> Result<Key, &'static str> {
    let obj = v.as_object().ok_or("not an object")?;
    let kty = obj.get("kty").and_then(Value::as_str).ok_or("no kty")?;
    if kty == "oct" {
        return Err("symmetric keys are never taken from a JWKS");
    }
    if ["d", "p", "q", "dp", "dq", "qi"]
        .iter()
        .any(|k| obj.contains_key(*k))
    {
        return Err("contains private key material");
    }
    match obj.get("use") {
        None => {}
        Some(Value::String(u)) if u == "sig" => {}
        Some(_) => return Err("use is not sig"),
    }
    if let Some(ops) = obj.get("key_ops") {
        let ops = ops.as_array().ok_or("key_ops is not a list")?;
        if !ops.iter().any(|o| o.as_str() == Some("verify")) {
            return Err("key_ops lacks verify");
        }
    }
    let kid = match obj.get("kid") {
        None => None,
        Some(Value::String(k)) => Some(k.clone()),
        Some(_) => return Err("kid is not a string"),
    };
    let crv = obj.get("crv").and_then(Value::as_str);
    let alg = match obj.get("alg") {
        None => infer_alg(kty, crv).ok_or("no alg and none can be inferred")?,
        Some(Value::String(a)) => a.parse::<Algorithm>().map_err(|_| "unsupported alg")?,
        Some(_) => return Err("alg is not a string"),
    };
    if !allowed.contains(&alg) {
        return Err("alg not in the allowlist");
    }
    if !family_ok(kty, crv, alg) {
        return Err("alg does not match the key type or curve");
    }
    if kty == "RSA" {
        let n = obj
            .get("n")
            .and_then(Value::as_str)
            .ok_or("RSA key without n")?;
        let bits = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(n.trim_end_matches('='))
            .map_err(|_| "RSA n is not base64url")?
            .iter()
            .skip_while(|b| **b == 0)
            .count()
            * 8;
        if !(2048..=8192).contains(&bits) {
            return Err("RSA key size outside 2048..8192 bits");
        }
    }
    let jwk: Jwk = serde_json::from_value(v.clone()).map_err(|_| "malformed JWK")?;
    let key = DecodingKey::from_jwk(&jwk).map_err(|_| "unusable key material")?;
    Ok(Key { kid, alg, key })
}

/// Parses a JWKS document, skipping unusable keys.
pub(crate) fn parse_set(
    body: &[u8],
    allowed: &[Algorithm],
    source: &str,
) -> Result<Vec<Key>, ProviderError> {
    let doc: Value =
        serde_json::from_slice(body).map_err(|_| ProviderError::unavailable("JWKS is not JSON"))?;
    let list = doc
        .get("keys")
        .and_then(Value::as_array)
        .ok_or_else(|| ProviderError::unavailable("JWKS has no keys list"))?;
    let mut keys = Vec::new();
    for (i, v) in list.iter().enumerate().take(MAX_KEYS) {
        match parse_key(v, allowed) {
            Ok(k) => keys.push(k),
            Err(why) => {
                tracing::warn!(source, index = i, reason = why, "providers.jwt.key_skipped")
            }
        }
    }
    if keys.is_empty() {
        return Err(ProviderError::unavailable("JWKS has no usable key"));
    }
    Ok(keys)
}

/// Keys of one provider, refreshed as described in the module docs.
pub(crate) struct KeyStore {
    source: KeySource,
    client: HttpClient,
    allowed: Vec<Algorithm>,
    min_refetch: Duration,
    max_age: Duration,
    current: RwLock<Option<Arc<Keys>>>,
    jwks_uri: RwLock<Option<String>>,
    fetching: tokio::sync::Mutex<Gate>,
    /// A background refresh of old keys is running.
    refreshing: AtomicBool,
    /// The background retry of a first load is running.
    retrying: AtomicBool,
}

/// When the last fetch started and how many failed in a row.
#[derive(Default)]
struct Gate {
    last: Option<Instant>,
    failures: u32,
}

impl KeyStore {
    pub(crate) fn new(
        source: KeySource,
        client: HttpClient,
        allowed: Vec<Algorithm>,
        min_refetch: Duration,
        max_age: Duration,
    ) -> Self {
        KeyStore {
            source,
            client,
            allowed,
            min_refetch,
            max_age,
            current: RwLock::new(None),
            jwks_uri: RwLock::new(None),
            fetching: tokio::sync::Mutex::new(Gate::default()),
            refreshing: AtomicBool::new(false),
            retrying: AtomicBool::new(false),
        }
    }

    pub(crate) fn snapshot(&self) -> Option<Arc<Keys>> {
        self.current
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    pub(crate) fn is_loaded(&self) -> bool {
        self.snapshot().is_some()
    }

    async fn jwks_uri(&self) -> Result<String, ProviderError> {
        match &self.source {
            KeySource::Uri(u) => Ok(u.clone()),
            KeySource::Discovery(issuer) => {
                if let Some(u) = self
                    .jwks_uri
                    .read()
                    .unwrap_or_else(PoisonError::into_inner)
                    .clone()
                {
                    return Ok(u);
                }
                let uri = self.client.discover(issuer, &["jwks_uri"]).await?.remove(0);
                *self
                    .jwks_uri
                    .write()
                    .unwrap_or_else(PoisonError::into_inner) = Some(uri.clone());
                Ok(uri)
            }
        }
    }

    async fn fetch(&self) -> Result<Arc<Keys>, ProviderError> {
        let uri = self.jwks_uri().await?;
        let res = self
            .client
            .send("JWKS", self.client.inner().get(&uri))
            .await?;
        if !res.status.is_success() {
            return Err(ProviderError::unavailable(format!(
                "JWKS: status {}",
                res.status.as_u16()
            )));
        }
        let keys = parse_set(&res.body, &self.allowed, "jwks")?;
        let keys = Arc::new(Keys {
            keys,
            fetched: Instant::now(),
        });
        *self.current.write().unwrap_or_else(PoisonError::into_inner) = Some(keys.clone());
        Ok(keys)
    }

    /// How long after a fetch the next one may start: `min_refetch`, or while no keys were ever
    /// loaded, 0.5 s doubling per failure up to `min_refetch`.
    fn interval(&self, failures: u32) -> Duration {
        if self.is_loaded() {
            return self.min_refetch;
        }
        let backoff = FIRST_RETRY.saturating_mul(1u32 << failures.saturating_sub(1).min(16));
        backoff.min(self.min_refetch)
    }

    /// Refetches unless another caller did so recently (see [`interval`](Self::interval); then
    /// returns what it got). `stale`: keys fetched at or before this instant count as stale
    /// (`None`: any keys do).
    pub(crate) async fn refresh(&self, stale: Option<Instant>) -> Result<Arc<Keys>, ProviderError> {
        let mut gate = self.fetching.lock().await;
        if let Some(current) = self.snapshot()
            && stale.is_none_or(|s| current.fetched > s)
        {
            return Ok(current);
        }
        if let Some(at) = gate.last
            && at.elapsed() < self.interval(gate.failures)
        {
            return self
                .snapshot()
                .ok_or_else(|| ProviderError::unavailable("JWKS not loaded yet"));
        }
        gate.last = Some(Instant::now());
        match self.fetch().await {
            Ok(k) => {
                gate.failures = 0;
                Ok(k)
            }
            Err(e) => {
                gate.failures = gate.failures.saturating_add(1);
                tracing::warn!(error = %e, "providers.jwt.jwks_fetch_failed");
                Err(e)
            }
        }
    }

    /// Loads the keys now; while that fails and no keys were ever loaded, one background task
    /// keeps retrying with backoff (it stops when the store is dropped).
    pub(crate) async fn load(self: &Arc<Self>) -> Result<Arc<Keys>, ProviderError> {
        let result = self.refresh(None).await;
        if result.is_err() {
            self.retry_in_background();
        }
        result
    }

    fn retry_in_background(self: &Arc<Self>) {
        if self.is_loaded() || self.retrying.swap(true, Ordering::AcqRel) {
            return;
        }
        let weak: Weak<Self> = Arc::downgrade(self);
        tokio::spawn(async move {
            loop {
                let wait = match weak.upgrade() {
                    Some(me) => {
                        let failures = me.fetching.lock().await.failures;
                        me.interval(failures)
                    }
                    None => return,
                };
                tokio::time::sleep(wait).await;
                let Some(me) = weak.upgrade() else { return };
                if me.refresh(None).await.is_ok() || me.is_loaded() {
                    me.retrying.store(false, Ordering::Release);
                    return;
                }
            }
        });
    }

    /// The key for `kid` and `alg`, loading or refetching as needed.
    pub(crate) async fn key(
        self: &Arc<Self>,
        kid: Option<&str>,
        alg: Algorithm,
    ) -> Result<(Algorithm, DecodingKey), ProviderError> {
        let keys = match self.snapshot() {
            Some(k) => {
                // One background refresh at a time, however many requests see old keys.
                if k.fetched.elapsed() > self.max_age
                    && !self.refreshing.swap(true, Ordering::AcqRel)
                {
                    let me = self.clone();
                    let fetched = k.fetched;
                    tokio::spawn(async move {
                        let _ = me.refresh(Some(fetched)).await;
                        me.refreshing.store(false, Ordering::Release);
                    });
                }
                k
            }
            None => self.load().await?,
        };
        if let Some(found) = find(&keys, kid, alg)? {
            return Ok(found);
        }
        // Unknown kid: maybe a rotation. Refetch (rate-limited, single flight) and look again.
        let fresh = match self.refresh(Some(keys.fetched)).await {
            Ok(k) => k,
            Err(_) => {
                return Err(ProviderError::unavailable(
                    "unknown kid and the JWKS cannot be fetched",
                ));
            }
        };
        find(&fresh, kid, alg)?.ok_or_else(|| ProviderError::invalid("no key for this kid and alg"))
    }
}

fn find(
    keys: &Keys,
    kid: Option<&str>,
    alg: Algorithm,
) -> Result<Option<(Algorithm, DecodingKey)>, ProviderError> {
    let mut matching = keys
        .keys
        .iter()
        .filter(|k| k.alg == alg && (kid.is_none() || k.kid.as_deref() == kid));
    let first = matching.next();
    if matching.next().is_some() {
        // Two keys for one kid and alg (or no kid and several keys): refuse to guess.
        return Err(ProviderError::invalid("ambiguous key selection"));
    }
    Ok(first.map(|k| (k.alg, k.key.clone())))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const ALLOWED: &[Algorithm] = &[Algorithm::RS256, Algorithm::ES256, Algorithm::EdDSA];

    fn ec_key() -> Value {
        // A P-256 public key (RFC 7515 appendix A.3).
        json!({"kty":"EC","crv":"P-256","kid":"ec1",
               "x":"f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU",
               "y":"x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"})
    }

    #[test]
    fn odd_keys_are_skipped_and_good_ones_kept() {
        let set = json!({"keys": [
            {"kty":"oct","k":"c2VjcmV0","kid":"h"},
            {"kty":"OKP","crv":"Ed448","x":"AAAA","kid":"ed448"},
            {"kty":"EC","crv":"secp256k1","x":"AAAA","y":"AAAA","kid":"k1"},
            {"kty":"RSA","n":"AQAB","e":"AQAB","kid":"small"},
            {"kty":"RSA","kid":5,"n":"AQAB","e":"AQAB"},
            {"kty":"EC","crv":"P-256","use":"enc","x":"f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU","y":"x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"},
            {"kty":"EC","crv":"P-256","alg":"RS256","x":"f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU","y":"x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"},
            {"kty":"EC","crv":"P-256","d":"secret","x":"f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU","y":"x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"},
            "garbage",
            ec_key(),
        ]});
        let keys = parse_set(set.to_string().as_bytes(), ALLOWED, "test").unwrap();
        assert_eq!(keys.len(), 1);
        assert_eq!(keys[0].kid.as_deref(), Some("ec1"));
        assert_eq!(keys[0].alg, Algorithm::ES256);
    }

    #[test]
    fn empty_or_garbage_sets_are_errors() {
        assert!(parse_set(b"{\"keys\":[]}", ALLOWED, "t").is_err());
        assert!(parse_set(b"<html>", ALLOWED, "t").is_err());
        assert!(parse_set(b"{\"keys\":[{\"kty\":\"oct\",\"k\":\"AA\"}]}", ALLOWED, "t").is_err());
    }

    #[test]
    fn mutated_key_sets_never_panic() {
        let good = json!({"keys": [ec_key(), {"kty":"RSA","n":"AQAB","e":"AQAB"}]})
            .to_string()
            .into_bytes();
        let mut x: u64 = 0x2545_f491_4f6c_dd1d;
        for _ in 0..20_000 {
            let mut b = good.clone();
            for _ in 0..3 {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                let pos = (x as usize) % b.len();
                let set = b"{}[]\":,0aZ-_ ";
                b[pos] = set[(x >> 32) as usize % set.len()];
            }
            let _ = parse_set(&b, ALLOWED, "fuzz");
        }
    }

    #[test]
    fn ambiguous_kids_are_refused() {
        let k = parse_key(&ec_key(), ALLOWED).unwrap();
        let k2 = parse_key(&ec_key(), ALLOWED).unwrap();
        let keys = Keys {
            keys: vec![k, k2],
            fetched: Instant::now(),
        };
        assert!(find(&keys, Some("ec1"), Algorithm::ES256).is_err());
        assert!(
            find(&keys, Some("ec1"), Algorithm::RS256)
                .unwrap()
                .is_none()
        );
    }
}
