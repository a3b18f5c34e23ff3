//! Creating, rotating and revoking tokens on behalf of someone: the checks, the store calls,
//! the cache eviction and the audit line, shared by the JSON API ([`super::api`]) and the
//! portal, so both refuse and record exactly alike. Callers only translate a [`Failure`]
//! into their own answer (JSON or an HTML page).

use std::collections::BTreeMap;
use std::time::Duration;

use super::TokenSettings;
use super::format::GeneratedToken;
use super::last_used::unix_now;
use super::store::{
    Conflict, NewToken, Owner, Rotation, StoreError, TokenId, TokenRecord, TokenStore,
};
use crate::secret::Secret;
use crate::{Authenticator, Principal};

/// Longest token name, in characters.
pub const MAX_NAME_CHARS: usize = 100;

/// Who acts: the owner of new tokens, whether they came with a limited credential, the role
/// and attribute snapshot a new token keeps, and the client address for the audit line.
#[derive(Debug)]
pub(crate) struct Actor<'a> {
    pub(crate) owner: Owner,
    /// The API token the request was made with, if any.
    pub(crate) via_token: Option<&'a str>,
    /// Whether the credential held only some scopes (a token, a scoped OAuth access token).
    pub(crate) limited: bool,
    /// The provider's view only: augmenters run again at each use of a token.
    pub(crate) roles: &'a [String],
    pub(crate) attributes: &'a BTreeMap<String, String>,
    pub(crate) client: &'a str,
}

impl<'a> Actor<'a> {
    /// The actor of an authenticated request.
    pub(crate) fn of(p: &'a Principal, client: &'a str) -> Self {
        let (roles, attributes) = p.unaugmented();
        Actor {
            owner: Owner::new(p.username.clone(), p.realm.clone()),
            via_token: p.token_id(),
            limited: !matches!(p.user().scopes, crate::user::Scopes::All),
            roles,
            attributes,
            client,
        }
    }
}

/// Which input a [`Failure::Invalid`] is about.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Field {
    Name,
    Scopes,
    Lifetime,
}

/// Why an operation did nothing.
#[derive(Debug)]
pub(crate) enum Failure {
    /// Bad input.
    Invalid(Field, String),
    /// A token or scope-limited credential may not do this (the verb: "create", "rotate").
    Limited(&'static str),
    /// A token request may revoke only its own token.
    NotOwnToken,
    /// The create nonce was used before: a replayed form.
    Replay,
    /// Unknown, someone else's, or not in a state for this.
    NotFound,
    /// A rotation would keep scopes the catalogue no longer offers (why, naming the scope).
    ScopesGone(String),
    /// The OS random source failed.
    Random,
    /// The store failed (fail closed: 503).
    Store(StoreError),
}

impl From<StoreError> for Failure {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Conflict(Conflict::Nonce) => Failure::Replay,
            other => Failure::Store(other),
        }
    }
}

/// A created or rotated token and its secret (shown once).
#[derive(Debug)]
pub(crate) struct Created {
    pub(crate) record: TokenRecord,
    pub(crate) secret: Secret,
}

/// Unicode `General_Category = Cf` (format characters: bidi overrides, zero-width joiners,
/// tags), as of Unicode 16: they make a name display as something else ("txt.exe" shown as
/// "exe.txt"). A table instead of a dependency; keep `api::NAME_PATTERN` in step.
const FORMAT: &[(u32, u32)] = &[
    (0xAD, 0xAD),
    (0x600, 0x605),
    (0x61C, 0x61C),
    (0x6DD, 0x6DD),
    (0x70F, 0x70F),
    (0x890, 0x891),
    (0x8E2, 0x8E2),
    (0x180E, 0x180E),
    (0x200B, 0x200F),
    (0x202A, 0x202E),
    (0x2060, 0x2064),
    (0x2066, 0x206F),
    (0xFEFF, 0xFEFF),
    (0xFFF9, 0xFFFB),
    (0x110BD, 0x110BD),
    (0x110CD, 0x110CD),
    (0x13430, 0x1343F),
    (0x1BCA0, 0x1BCA3),
    (0x1D173, 0x1D17A),
    (0xE0001, 0xE0001),
    (0xE0020, 0xE007F),
];

fn is_format(c: char) -> bool {
    let c = u32::from(c);
    FORMAT.iter().any(|(lo, hi)| (*lo..=*hi).contains(&c))
}

/// The name as stored (trimmed), or why it is refused.
pub(crate) fn check_name(name: &str) -> Result<&str, Failure> {
    let bad = if name.trim().is_empty() {
        Some("must not be empty".to_owned())
    } else if name.chars().count() > MAX_NAME_CHARS {
        Some(format!("must be at most {MAX_NAME_CHARS} characters"))
    } else if name.chars().any(|c| c.is_control() || is_format(c)) {
        Some("must not contain control or format characters (such as U+202E)".to_owned())
    } else {
        None
    };
    match bad {
        Some(why) => Err(Failure::Invalid(Field::Name, why)),
        None => Ok(name.trim()),
    }
}

/// The lifetime asked for in days (`None`: the default), within the configured maximum.
pub(crate) fn lifetime(settings: &TokenSettings, days: Option<u32>) -> Result<Duration, Failure> {
    let max_days = settings.max_lifetime.as_secs() / 86_400;
    match days {
        None => Ok(settings.default_lifetime),
        Some(0) => Err(Failure::Invalid(
            Field::Lifetime,
            "must be at least 1".into(),
        )),
        Some(d) if u64::from(d) > max_days => Err(Failure::Invalid(
            Field::Lifetime,
            format!("must be at most {max_days}"),
        )),
        Some(d) => Ok(Duration::from_secs(u64::from(d) * 86_400)),
    }
}

fn refuse_limited(actor: &Actor<'_>, verb: &'static str) -> Result<(), Failure> {
    if actor.via_token.is_some() || actor.limited {
        Err(Failure::Limited(verb))
    } else {
        Ok(())
    }
}

/// A new secret and the time it is made at.
fn fresh(settings: &TokenSettings) -> Result<(GeneratedToken, i64), Failure> {
    let generated = settings.format.generate().map_err(|_| Failure::Random)?;
    Ok((generated, unix_now()))
}

fn expiry(now: i64, lifetime: Duration) -> i64 {
    now.saturating_add(i64::try_from(lifetime.as_secs()).unwrap_or(i64::MAX))
}

/// What a create asks for.
#[derive(Debug)]
pub(crate) struct CreateInput<'a> {
    pub(crate) name: &'a str,
    pub(crate) scopes: &'a BTreeMap<String, Vec<String>>,
    pub(crate) days: Option<u32>,
    /// The form's single-use nonce (the portal); `None` for the API.
    pub(crate) nonce: Option<String>,
}

/// Checks and stores a new token of `actor`, writing the audit line.
pub(crate) async fn create(
    store: &dyn TokenStore,
    settings: &TokenSettings,
    actor: &Actor<'_>,
    input: CreateInput<'_>,
) -> Result<Created, Failure> {
    refuse_limited(actor, "create")?;
    let name = check_name(input.name)?;
    let scopes = settings
        .catalogue
        .check(input.scopes)
        .map_err(|e| Failure::Invalid(Field::Scopes, e.to_string()))?;
    let lifetime = lifetime(settings, input.days)?;
    let (generated, now) = fresh(settings)?;
    let mut new = NewToken::new(
        generated.hash,
        generated.hint,
        actor.owner.clone(),
        name,
        scopes,
        now,
        expiry(now, lifetime),
    )
    .with_roles(actor.roles.to_vec())
    .with_attributes(actor.attributes.clone());
    if let Some(nonce) = input.nonce {
        new = new.with_create_nonce(nonce);
    }
    let record = store.create(new).await?;
    audit("token.created", actor, &record.owner, &record.id);
    Ok(Created {
        record,
        secret: generated.secret,
    })
}

/// Rotates `actor`'s active token `id`: a new secret with the default lifetime, the old one
/// revoked and evicted from `authenticator`'s cache.
pub(crate) async fn rotate(
    store: &dyn TokenStore,
    settings: &TokenSettings,
    authenticator: &Authenticator,
    actor: &Actor<'_>,
    id: &TokenId,
) -> Result<Created, Failure> {
    refuse_limited(actor, "rotate")?;
    let (generated, now) = fresh(settings)?;
    // The new token keeps the old one's scopes: refused when the catalogue no longer offers
    // them all (a service or scope removed from `services` since), rather than minting a
    // fresh secret for a scope that no longer exists. The owner creates a new token instead.
    match store.get(&actor.owner, id).await? {
        Some(old) if old.state(now) == super::TokenState::Active => {
            if let Err(e) = settings.catalogue.check(&old.scopes) {
                return Err(Failure::ScopesGone(e.to_string()));
            }
        }
        _ => return Err(Failure::NotFound),
    }
    let rotation = Rotation::new(
        generated.hash,
        generated.hint,
        now,
        expiry(now, settings.default_lifetime),
    );
    match store.rotate(&actor.owner, id, rotation).await? {
        Some(record) => {
            authenticator.invalidate_token(id.as_str());
            audit("token.rotated", actor, &record.owner, &record.id);
            Ok(Created {
                record,
                secret: generated.secret,
            })
        }
        None => Err(Failure::NotFound),
    }
}

/// Revokes `owner`'s token `id` for `actor` (the owner, or an administrator: the audit line
/// names both) and evicts it from `authenticator`'s cache.
pub(crate) async fn revoke(
    store: &dyn TokenStore,
    authenticator: &Authenticator,
    actor: &Actor<'_>,
    owner: &Owner,
    id: &TokenId,
) -> Result<(), Failure> {
    if actor.via_token.is_some_and(|own| own != id.as_str()) {
        return Err(Failure::NotOwnToken);
    }
    if store.revoke(owner, id, unix_now()).await? {
        authenticator.invalidate_token(id.as_str());
        audit("token.revoked", actor, owner, id);
        Ok(())
    } else {
        Err(Failure::NotFound)
    }
}

/// One audit line: who, whose token, which, from where; never the secret.
fn audit(event: &str, actor: &Actor<'_>, owner: &Owner, id: &TokenId) {
    let admin = *owner != actor.owner;
    tracing::info!(
        target: "auth_o_tron::audit",
        event_name = event, user = %actor.owner.username, realm = %actor.owner.realm,
        via_token = actor.via_token.unwrap_or("-"), token_id = %id, client = %actor.client,
        owner = %owner.username, owner_realm = %owner.realm, admin,
    );
}
