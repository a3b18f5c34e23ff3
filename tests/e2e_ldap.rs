//! The `ldap` augmenter against a real OpenLDAP `slapd` (Debian package) started by the test
//! with a small directory. Feature `e2e`; the README's test command installs slapd.
#![cfg(all(feature = "e2e", feature = "ldap"))]

mod common;

use std::collections::HashSet;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use auth_o_tron::Authenticator;
use auth_o_tron::augment::{LdapAugmenter, LdapSettings};
use auth_o_tron::provider::PlainProvider;
use common::basic;
use ldap3::LdapConnAsync;

struct Slapd {
    child: Child,
    port: u16,
    /// Its configuration and database; removed after the child is stopped (fields drop after
    /// `Drop::drop`), also when a test fails.
    _dir: tempfile::TempDir,
}

impl Drop for Slapd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn slapd_binary() -> PathBuf {
    let p = PathBuf::from("/usr/sbin/slapd");
    assert!(
        p.exists(),
        "slapd is not installed: run ./scripts/test-all.sh, which installs it"
    );
    p
}

async fn start() -> Slapd {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let tmp = tempfile::Builder::new()
        .prefix("aot-slapd-")
        .tempdir()
        .unwrap();
    let dir = tmp.path();
    std::fs::create_dir_all(dir.join("db")).unwrap();
    let conf = std::fs::read_to_string(
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/ldap/slapd.conf"),
    )
    .unwrap()
    .replace("@DIR@", dir.to_str().unwrap());
    std::fs::write(dir.join("slapd.conf"), conf).unwrap();
    let child = Command::new(slapd_binary())
        .args(["-d", "0", "-h", &format!("ldap://127.0.0.1:{port}/"), "-f"])
        .arg(dir.join("slapd.conf"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let slapd = Slapd {
        child,
        port,
        _dir: tmp,
    };
    for _ in 0..100 {
        if tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_ok()
        {
            populate(port).await;
            return slapd;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("slapd did not start");
}

/// The directory: a reader account, three people, groups in nested OUs.
async fn populate(port: u16) {
    let (conn, mut ldap) = LdapConnAsync::new(&format!("ldap://127.0.0.1:{port}"))
        .await
        .unwrap();
    ldap3::drive!(conn);
    ldap.simple_bind("cn=admin,dc=example,dc=org", "adminpw")
        .await
        .unwrap()
        .success()
        .unwrap();
    let s = |v: &[&str]| {
        v.iter()
            .map(|x| (*x).to_owned())
            .collect::<HashSet<String>>()
    };
    type Entry<'a> = (&'a str, Vec<(&'a str, HashSet<String>)>);
    let entries: Vec<Entry<'_>> = vec![
        (
            "dc=example,dc=org",
            vec![
                ("objectClass", s(&["dcObject", "organization"])),
                ("dc", s(&["example"])),
                ("o", s(&["Example"])),
            ],
        ),
        (
            "cn=reader,dc=example,dc=org",
            vec![
                ("objectClass", s(&["person"])),
                ("cn", s(&["reader"])),
                ("sn", s(&["r"])),
                ("userPassword", s(&["readerpw"])),
            ],
        ),
        (
            "ou=people,dc=example,dc=org",
            vec![
                ("objectClass", s(&["organizationalUnit"])),
                ("ou", s(&["people"])),
            ],
        ),
        (
            "ou=groups,dc=example,dc=org",
            vec![
                ("objectClass", s(&["organizationalUnit"])),
                ("ou", s(&["groups"])),
            ],
        ),
        (
            "ou=A,ou=groups,dc=example,dc=org",
            vec![
                ("objectClass", s(&["organizationalUnit"])),
                ("ou", s(&["A"])),
            ],
        ),
        (
            "ou=B,ou=A,ou=groups,dc=example,dc=org",
            vec![
                ("objectClass", s(&["organizationalUnit"])),
                ("ou", s(&["B"])),
            ],
        ),
        (
            "cn=alice,ou=people,dc=example,dc=org",
            vec![
                ("objectClass", s(&["person"])),
                ("cn", s(&["alice"])),
                ("sn", s(&["a"])),
            ],
        ),
        (
            "cn=bob,ou=people,dc=example,dc=org",
            vec![
                ("objectClass", s(&["person"])),
                ("cn", s(&["bob"])),
                ("sn", s(&["b"])),
            ],
        ),
        (
            "cn=*,ou=people,dc=example,dc=org",
            vec![
                ("objectClass", s(&["person"])),
                ("cn", s(&["*"])),
                ("sn", s(&["star"])),
            ],
        ),
        (
            "cn=dev,ou=groups,dc=example,dc=org",
            vec![
                ("objectClass", s(&["groupOfNames"])),
                ("cn", s(&["dev"])),
                (
                    "member",
                    s(&[
                        "cn=alice,ou=people,dc=example,dc=org",
                        "cn=bob,ou=people,dc=example,dc=org",
                    ]),
                ),
            ],
        ),
        (
            "cn=R,ou=B,ou=A,ou=groups,dc=example,dc=org",
            vec![
                ("objectClass", s(&["groupOfNames"])),
                ("cn", s(&["R"])),
                ("member", s(&["cn=alice,ou=people,dc=example,dc=org"])),
            ],
        ),
    ];
    for (dn, attrs) in entries {
        let attrs: Vec<(String, HashSet<String>)> =
            attrs.into_iter().map(|(k, v)| (k.to_owned(), v)).collect();
        ldap.add(dn, attrs)
            .await
            .unwrap()
            .success()
            .unwrap_or_else(|e| panic!("{dn}: {e}"));
    }
    ldap.unbind().await.unwrap();
}

fn augmenter(port: u16, filter: Option<&str>, filters: Option<Vec<&str>>) -> LdapAugmenter {
    LdapAugmenter::new(
        "directory",
        "corp",
        LdapSettings {
            uri: format!("ldap://127.0.0.1:{port}"),
            search_base: "dc=example,dc=org".into(),
            bind_dn: "cn=reader,dc=example,dc=org".into(),
            password: "readerpw".into(),
            filter: filter.map(str::to_owned),
            filters: filters.map(|f| f.into_iter().map(str::to_owned).collect()),
            timeout: Duration::from_secs(2),
            cache_ttl: Duration::from_secs(120),
        },
    )
    .unwrap()
}

fn authenticator(aug: LdapAugmenter) -> Authenticator {
    let users = PlainProvider::new("local", "corp")
        .with_user_password("alice", "pw", ["staff"])
        .unwrap()
        .with_user_password("bob", "pw", Vec::<String>::new())
        .unwrap()
        .with_user_password("carol", "pw", Vec::<String>::new())
        .unwrap()
        .with_user_password("*)(cn=*", "pw", Vec::<String>::new())
        .unwrap();
    Authenticator::builder()
        .provider(users)
        .augmenter(aug)
        .build()
        .unwrap()
}

fn login(user: &str) -> http::HeaderMap {
    let mut h = http::HeaderMap::new();
    h.insert("authorization", basic(user, "pw").parse().unwrap());
    h
}

#[tokio::test]
async fn member_of_groups_become_roles() {
    let slapd = start().await;
    let auth = authenticator(augmenter(slapd.port, None, None));
    let alice = auth.authenticate(&login("alice")).await.unwrap();
    let mut roles = alice.roles.clone();
    roles.sort();
    assert_eq!(roles, ["R", "dev", "staff"]);
    assert_eq!(
        auth.authenticate(&login("bob")).await.unwrap().roles,
        ["dev"]
    );
    assert!(
        auth.authenticate(&login("carol"))
            .await
            .unwrap()
            .roles
            .is_empty(),
        "not in the directory"
    );

    let paths = authenticator(augmenter(slapd.port, None, Some(vec!["OU=A"])));
    assert_eq!(
        paths.authenticate(&login("alice")).await.unwrap().roles,
        ["staff", "/A/B/R"]
    );
    let substring = authenticator(augmenter(slapd.port, Some("ou=B"), None));
    assert_eq!(
        substring.authenticate(&login("alice")).await.unwrap().roles,
        ["staff", "R"]
    );
}

#[tokio::test]
async fn usernames_are_escaped_not_interpreted() {
    let slapd = start().await;
    let auth = authenticator(augmenter(slapd.port, None, None));
    // Unescaped, `(cn=*)(cn=*)` would match every person; escaped, it matches only the entry
    // whose cn is literally `*)(cn=*`, which does not exist (the `*` entry is someone else).
    let p = auth.authenticate(&login("*)(cn=*")).await.unwrap();
    assert!(p.roles.is_empty(), "{:?}", p.roles);
}

#[tokio::test]
async fn results_are_cached_and_outages_never_fail_authentication() {
    let slapd = start().await;
    let aug = augmenter(slapd.port, None, None);
    // Two authenticators sharing the augmenter: the second lookup is served by its cache.
    let first = authenticator(aug.clone());
    assert_eq!(
        first.authenticate(&login("bob")).await.unwrap().roles,
        ["dev"]
    );
    drop(slapd);
    tokio::time::sleep(Duration::from_millis(200)).await;
    let second = authenticator(aug);
    assert_eq!(
        second.authenticate(&login("bob")).await.unwrap().roles,
        ["dev"],
        "cached per user"
    );
    // A user never looked up: the directory is down, authentication still succeeds, the
    // failure is counted.
    let alice = second.authenticate(&login("alice")).await.unwrap();
    assert_eq!(alice.roles, ["staff"]);
    assert_eq!(second.stats().augmenters()[0].error(), 1);
}
