//! `sidecar tokens ...`: the operator's commands on the configured token store (list a user's
//! tokens, revoke one or all of them, prune expired and revoked ones and idle openid-offline
//! refresh-token chains).
//!
//! With PostgreSQL, running replicas evict a revoked token from their caches within a second
//! (NOTIFY); with SQLite, a running sidecar stops accepting it when its cache entry expires
//! (`tokens.cache_ttl_seconds`).

use std::fmt;

use super::config::{BuiltTokens, Config};
use crate::token::store::{Owner, TokenId, TokenState};

/// Usage of the token commands.
pub(crate) const USAGE: &str = "\
  tokens list USER [--realm REALM]           a user's tokens (every provider realm by default)
  tokens revoke ID [--user USER [--realm REALM]]
                                             revoke one token (by id alone, or only if
                                             it is USER's)
  tokens revoke-all USER [--realm REALM]     revoke every token of a user
  tokens prune [--older-than-days N]         delete tokens expired or revoked N days ago (0),
                                             ended portal sessions, and refresh-token chains
                                             idle for 30 days
";

/// A parsed token command.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Command {
    List {
        user: String,
        realm: Option<String>,
    },
    Revoke {
        id: String,
        /// Only if it is this user's (and realm's) token.
        user: Option<String>,
        realm: Option<String>,
    },
    RevokeAll {
        user: String,
        realm: Option<String>,
    },
    Prune {
        older_than_days: u32,
    },
}

/// A command line that is not a token command.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct UsageError(pub(crate) String);

impl fmt::Display for UsageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl Command {
    /// Parses the words after `tokens`.
    pub(crate) fn parse(args: &[String]) -> Result<Command, UsageError> {
        let err = |m: &str| UsageError(m.to_owned());
        let (sub, rest) = args
            .split_first()
            .ok_or_else(|| err("tokens needs a command"))?;
        let mut positional = Vec::new();
        let (mut realm, mut user, mut days) = (None, None, None);
        let mut it = rest.iter();
        while let Some(a) = it.next() {
            let mut value = |name: &str| {
                it.next()
                    .cloned()
                    .ok_or_else(|| UsageError(format!("{name} needs a value")))
            };
            match a.as_str() {
                "--realm" => realm = Some(value("--realm")?),
                "--user" => user = Some(value("--user")?),
                "--older-than-days" => {
                    let v = value("--older-than-days")?;
                    days = Some(v.parse::<u32>().map_err(|_| {
                        UsageError(format!("--older-than-days: {v:?} is not a number of days"))
                    })?);
                }
                flag if flag.starts_with("--") => {
                    return Err(UsageError(format!("unknown option {flag:?}")));
                }
                word => positional.push(word.to_owned()),
            }
        }
        let one = |what: &str| -> Result<String, UsageError> {
            match positional.as_slice() {
                [x] => Ok(x.clone()),
                _ => Err(UsageError(format!("tokens {sub} needs exactly one {what}"))),
            }
        };
        Ok(match sub.as_str() {
            "list" => Command::List {
                user: one("USER")?,
                realm,
            },
            "revoke" if user.is_none() && realm.is_some() => {
                return Err(err("tokens revoke: --realm needs --user USER"));
            }
            "revoke" => Command::Revoke {
                id: one("ID")?,
                user,
                realm,
            },
            "revoke-all" => Command::RevokeAll {
                user: one("USER")?,
                realm,
            },
            "prune" if positional.is_empty() => Command::Prune {
                older_than_days: days.unwrap_or(0),
            },
            "prune" => return Err(err("tokens prune takes no arguments")),
            other => return Err(UsageError(format!("unknown tokens command {other:?}"))),
        })
    }
}

/// The owners a command names: one realm, or each distinct provider realm.
fn owners(config: &Config, user: &str, realm: Option<&str>) -> Vec<Owner> {
    match realm {
        Some(r) => vec![Owner::new(user, r)],
        None => {
            let mut realms: Vec<&str> = config
                .providers
                .iter()
                .map(|p| p.keys.realm.as_str())
                .collect();
            realms.sort_unstable();
            realms.dedup();
            realms.into_iter().map(|r| Owner::new(user, r)).collect()
        }
    }
}

/// Runs `command`, printing to stdout; the error is for stderr.
pub(crate) async fn run(
    config: &Config,
    tokens: &BuiltTokens,
    command: Command,
) -> Result<(), String> {
    let store = tokens.store.open().await.map_err(|e| e.to_string())?;
    let now = crate::token::last_used_now();
    let fail = |e: crate::token::StoreError| e.to_string();
    match command {
        Command::List { user, realm } => {
            println!("ID\tREALM\tNAME\tSCOPES\tCREATED\tEXPIRES\tLAST USED\tSTATE\tHINT");
            for owner in owners(config, &user, realm.as_deref()) {
                for r in store.list(&owner).await.map_err(fail)? {
                    let scopes: Vec<String> = r
                        .scopes
                        .iter()
                        .map(|(s, v)| format!("{s}:{}", v.join(",")))
                        .collect();
                    let state = match r.state(now) {
                        TokenState::Active => "active",
                        TokenState::Expired => "expired",
                        _ => "revoked",
                    };
                    println!(
                        "{}\t{}\t{}\t{}\t{}\t{}\t{}\t{state}\t{}",
                        r.id,
                        owner.realm,
                        r.name.escape_debug(),
                        scopes.join(" "),
                        crate::token::api::rfc3339(r.created_at),
                        crate::token::api::rfc3339(r.expires_at),
                        r.last_used_at
                            .map_or_else(|| "-".to_owned(), crate::token::api::rfc3339),
                        r.hint,
                    );
                }
            }
        }
        Command::Revoke {
            id,
            user: Some(user),
            realm,
        } => {
            let id = TokenId::parse(&id).ok_or_else(|| format!("{id:?} is not a token id"))?;
            let mut revoked = None;
            for owner in owners(config, &user, realm.as_deref()) {
                if store.revoke(&owner, &id, now).await.map_err(fail)? {
                    revoked = Some(owner);
                }
            }
            let Some(owner) = revoked else {
                return Err(format!("no active token {id} of {user}"));
            };
            audit("token.revoked", &owner, id.as_str());
            println!("revoked {id}");
        }
        Command::Revoke { id, user: None, .. } => {
            let id = TokenId::parse(&id).ok_or_else(|| format!("{id:?} is not a token id"))?;
            let owner = store
                .revoke_id(&id, now)
                .await
                .map_err(fail)?
                .ok_or_else(|| format!("no active token {id}"))?;
            audit("token.revoked", &owner, id.as_str());
            println!("revoked {id} of {} ({})", owner.username, owner.realm);
        }
        Command::RevokeAll { user, realm } => {
            let mut n = 0;
            for owner in owners(config, &user, realm.as_deref()) {
                n += store.revoke_all(&owner, now).await.map_err(fail)?;
                audit("token.revoked_all", &owner, "*");
            }
            println!("revoked {n} token(s) of {user}");
        }
        Command::Prune { older_than_days } => {
            let before = now.saturating_sub(i64::from(older_than_days) * 86_400);
            let n = store.prune(before).await.map_err(fail)?;
            println!("pruned {n} token(s)");
            // Refresh-token chains idle past the IdP's offline session are dead weight.
            if let Some(chains) = store.chains() {
                let idle =
                    i64::try_from(crate::provider::chain::MAX_IDLE.as_secs()).unwrap_or(i64::MAX);
                let chains_now = chains.now().await.map_err(|e| e.to_string())?;
                let m = chains
                    .prune(chains_now.saturating_sub(idle))
                    .await
                    .map_err(|e| e.to_string())?;
                println!("pruned {m} idle refresh-token chain(s)");
            }
            // Ended portal sessions and abandoned logins go too: they are worth nothing.
            if let Some(portal) = store.portal() {
                let n = portal.prune_portal(now).await.map_err(fail)?;
                println!("pruned {n} ended portal session(s) and login(s)");
            }
        }
    }
    Ok(())
}

/// One audit line. `owner` and `realm` name whose token it was; `actor` who acted (the API's
/// audit lines call the acting user `user`, so the owner is not called that here).
fn audit(event: &str, owner: &Owner, id: &str) {
    tracing::info!(
        target: "auth_o_tron::audit",
        event_name = event, owner = %owner.username, realm = %owner.realm, token_id = %id,
        actor = "admin-cli", client = "admin-cli",
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> Result<Command, UsageError> {
        let v: Vec<String> = s.split_whitespace().map(str::to_owned).collect();
        Command::parse(&v)
    }

    #[test]
    fn commands_parse_and_bad_ones_say_why() {
        assert_eq!(
            parse("list alice --realm demo"),
            Ok(Command::List {
                user: "alice".into(),
                realm: Some("demo".into())
            })
        );
        assert_eq!(
            parse("revoke abc"),
            Ok(Command::Revoke {
                id: "abc".into(),
                user: None,
                realm: None
            })
        );
        assert_eq!(
            parse("prune --older-than-days 7"),
            Ok(Command::Prune { older_than_days: 7 })
        );
        for (bad, why) in [
            ("", "needs a command"),
            ("list", "exactly one USER"),
            ("revoke", "exactly one ID"),
            ("revoke abc --realm demo", "--realm needs --user"),
            ("list a --realm", "--realm needs a value"),
            ("prune --older-than-days x", "not a number"),
            ("frob", "unknown tokens command"),
            ("list a --nope", "unknown option"),
        ] {
            let e = parse(bad).unwrap_err();
            assert!(e.0.contains(why), "{bad}: {e}");
        }
    }
}
