//! A token lookup that misses the cache: `find_by_hash` on the SQLite store (a file) and the
//! PostgreSQL store (a throwaway cluster on loopback), each next to the raw sqlx query on the
//! same database in the same run, so the difference is the store's own cost (row decoding,
//! JSON columns). 1 000 tokens in each store.
//!
//! `cargo bench --features e2e --bench token_store` (needs Debian's `postgresql`). After the
//! criterion groups it prints p50/p99 from 20 000 individually timed calls per case.

#[path = "../tests/common/postgres.rs"]
#[allow(dead_code, unreachable_pub)]
mod postgres;

use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

use auth_o_tron::token::store::open;
use auth_o_tron::token::{NewToken, Owner, TokenFormat, TokenHash, TokenScopes, TokenStore};
use criterion::{Criterion, criterion_group, criterion_main};

const NOW: i64 = 1_800_000_000;
const RAW: &str = "SELECT id, username, realm, name, scopes, roles, attributes, created_at, \
     expires_at, last_used_at, revoked_at, rotated_from, hint FROM aot_tokens \
     WHERE hash = $1 AND revoked_at IS NULL AND expires_at > $2";

/// Fills `store` with 1 000 tokens of 100 owners; returns the digest of one in the middle.
async fn fill(store: &dyn TokenStore) -> TokenHash {
    let format = TokenFormat::default();
    let scopes: TokenScopes = [(
        "polytope".to_owned(),
        vec!["read".to_owned(), "write".to_owned()],
    )]
    .into();
    let mut middle = None;
    for i in 0..1000 {
        let t = format.generate().unwrap();
        let owner = Owner::new(format!("user{}", i % 100), "ldap");
        let token = NewToken::new(
            t.hash,
            t.hint,
            owner,
            format!("t{i}"),
            scopes.clone(),
            NOW,
            NOW + 86_400,
        )
        .with_roles(vec!["user".into()]);
        store.create(token).await.unwrap();
        if i == 500 {
            middle = Some(t.hash);
        }
    }
    middle.unwrap()
}

fn percentiles(name: &str, rt: &tokio::runtime::Runtime, mut call: impl AsyncFnMut()) {
    rt.block_on(async {
        let mut times = Vec::with_capacity(20_000);
        for _ in 0..20_000 {
            let t = Instant::now();
            call().await;
            times.push(t.elapsed());
        }
        times.sort();
        let p = |q: f64| times[((times.len() as f64) * q) as usize];
        println!("{name}: p50 {:?} p99 {:?}", p(0.50), p(0.99));
    });
}

fn benches(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let sqlite_url = format!("sqlite://{}", dir.path().join("tokens.db").display());
    let pg = postgres::Postgres::start();
    let pg_url = pg.url();

    let mut cases: Vec<(&str, Arc<dyn TokenStore>, TokenHash)> = Vec::new();
    let mut raw: Vec<(&str, RawPool)> = Vec::new();
    for (name, url) in [("sqlite", &sqlite_url), ("postgres", &pg_url)] {
        let store = rt.block_on(open(url)).unwrap();
        let hash = rt.block_on(fill(&*store));
        cases.push((name, store, hash));
        raw.push((name, rt.block_on(RawPool::connect(url))));
    }

    let mut group = c.benchmark_group("token_store_find_by_hash");
    group.measurement_time(Duration::from_secs(5));
    for ((name, store, hash), (_, pool)) in cases.iter().zip(&raw) {
        group.bench_function(format!("{name}_store"), |b| {
            b.to_async(&rt)
                .iter(|| async { black_box(store.find_by_hash(hash, NOW).await.unwrap().unwrap()) })
        });
        group.bench_function(format!("{name}_raw_sqlx"), |b| {
            b.to_async(&rt)
                .iter(|| async { black_box(pool.find(hash).await) })
        });
    }
    group.finish();

    for ((name, store, hash), (_, pool)) in cases.iter().zip(&raw) {
        percentiles(&format!("{name}_store"), &rt, async || {
            black_box(store.find_by_hash(hash, NOW).await.unwrap().unwrap());
        });
        percentiles(&format!("{name}_raw_sqlx"), &rt, async || {
            black_box(pool.find(hash).await);
        });
    }
    drop((cases, raw));
    drop(pg);
}

/// The same query straight through sqlx, rows left undecoded.
enum RawPool {
    Sqlite(sqlx::SqlitePool),
    Postgres(sqlx::PgPool),
}

impl RawPool {
    async fn connect(url: &str) -> RawPool {
        if url.starts_with("sqlite:") {
            RawPool::Sqlite(sqlx::SqlitePool::connect(url).await.unwrap())
        } else {
            RawPool::Postgres(sqlx::PgPool::connect(url).await.unwrap())
        }
    }

    async fn find(&self, hash: &TokenHash) -> bool {
        // One query text, two driver types.
        macro_rules! fetch {
            ($pool:expr) => {
                sqlx::query(RAW)
                    .bind(&hash.as_bytes()[..])
                    .bind(NOW)
                    .fetch_optional($pool)
                    .await
                    .unwrap()
                    .is_some()
            };
        }
        match self {
            RawPool::Sqlite(p) => fetch!(p),
            RawPool::Postgres(p) => fetch!(p),
        }
    }
}

criterion_group!(token_store, benches);
criterion_main!(token_store);
