//! The `plain` and `plain_advanced` augmenters, with auth-o-tron's semantics (roles
//! deduplicated here).

use std::collections::BTreeMap;

use super::{AugmentError, Augmentation, Augmenter, AugmenterInfo, Stage};
use crate::provider::BoxFuture;
use crate::user::User;

/// `plain`: `roles: {role: [usernames]}` grants each role whose list names the user.
#[derive(Clone, Debug)]
pub struct PlainAugmenter {
    info: AugmenterInfo,
    roles: BTreeMap<String, Vec<String>>,
}

impl PlainAugmenter {
    /// An augmenter granting `roles` (role name to user names) in `realm`.
    pub fn new(
        name: impl Into<String>,
        realm: impl Into<String>,
        roles: BTreeMap<String, Vec<String>>,
    ) -> Self {
        PlainAugmenter {
            info: AugmenterInfo::new(name, "plain", realm),
            roles,
        }
    }

    fn compute(&self, user: &User) -> Augmentation {
        let roles = self
            .roles
            .iter()
            .filter(|(_, users)| users.contains(&user.username))
            .map(|(role, _)| role.clone())
            .collect();
        Augmentation {
            roles,
            attributes: BTreeMap::new(),
        }
    }
}

impl Augmenter for PlainAugmenter {
    fn info(&self) -> &AugmenterInfo {
        &self.info
    }
    fn augment<'a>(&'a self, user: &'a User) -> BoxFuture<'a, Result<Augmentation, AugmentError>> {
        Box::pin(std::future::ready(Ok(self.compute(user))))
    }
}

/// `plain_advanced`: when the username is listed in `match.username` or the user has a role in
/// `match.role`, add `augment.roles` and set `augment.attributes`.
#[derive(Clone, Debug)]
pub struct PlainAdvancedAugmenter {
    info: AugmenterInfo,
    match_usernames: Vec<String>,
    match_roles: Vec<String>,
    add: Augmentation,
}

impl PlainAdvancedAugmenter {
    /// An augmenter in `realm` that matches `usernames` or `roles` and adds `add`.
    pub fn new(
        name: impl Into<String>,
        realm: impl Into<String>,
        usernames: Vec<String>,
        roles: Vec<String>,
        add: Augmentation,
    ) -> Self {
        PlainAdvancedAugmenter {
            info: AugmenterInfo::new(name, "plain_advanced", realm),
            match_usernames: usernames,
            match_roles: roles,
            add,
        }
    }

    fn matches(&self, user: &User) -> bool {
        self.match_usernames.contains(&user.username)
            || self.match_roles.iter().any(|r| user.has_role(r))
    }
}

impl Augmenter for PlainAdvancedAugmenter {
    fn info(&self) -> &AugmenterInfo {
        &self.info
    }
    fn stage(&self) -> Stage {
        Stage::Sequential
    }
    fn augment<'a>(&'a self, user: &'a User) -> BoxFuture<'a, Result<Augmentation, AugmentError>> {
        let out = if self.matches(user) {
            self.add.clone()
        } else {
            Augmentation::default()
        };
        Box::pin(std::future::ready(Ok(out)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn plain_grants_listed_roles() {
        let a = PlainAugmenter::new(
            "a",
            "r",
            BTreeMap::from([
                ("admin".into(), vec!["alice".into(), "bob".into()]),
                ("ops".into(), vec!["bob".into()]),
            ]),
        );
        let got = a.augment(&User::new("alice", "r")).await.unwrap();
        assert_eq!(got.roles, ["admin"]);
    }

    #[tokio::test]
    async fn advanced_matches_user_or_role() {
        let add = Augmentation {
            roles: vec!["observer".into()],
            attributes: BTreeMap::from([("team".into(), "polytope".into())]),
        };
        let a =
            PlainAdvancedAugmenter::new("x", "r", vec!["adam".into()], vec!["admin".into()], add);
        let mut u = User::new("eve", "r").with_roles(["admin"]);
        a.augment(&u).await.unwrap().apply(&mut u);
        assert_eq!(u.roles, ["admin", "observer"]);
        assert_eq!(u.attributes["team"], "polytope");
        assert_eq!(
            a.augment(&User::new("mallory", "r")).await.unwrap(),
            Augmentation::default()
        );
        assert!(
            !a.augment(&User::new("adam", "r"))
                .await
                .unwrap()
                .roles
                .is_empty()
        );
    }
}
