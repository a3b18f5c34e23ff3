//! Minting a JWT per algorithm: a fresh signature, and the reused token of a cached principal.
//!
//! `cargo bench --bench mint`.

use std::hint::black_box;
use std::time::Duration;

use auth_o_tron::mint::{MintCache, Minter, SigningKey};
use auth_o_tron::{Principal, User};
use criterion::{BatchSize, Criterion, criterion_group, criterion_main};

fn principal() -> Principal {
    let user = User::new("alice", "bench")
        .with_roles(["user", "reader", "admin"])
        .with_attribute("email", "a@b.c");
    Principal::new(user, "bench", None)
}

fn benches(c: &mut Criterion) {
    let mut group = c.benchmark_group("mint");
    let keys = [
        ("hs256", SigningKey::hs256(&[7u8; 32]).unwrap()),
        ("es256", SigningKey::generate_es256("k1").unwrap()),
        ("eddsa", SigningKey::generate_eddsa("k2").unwrap()),
    ];
    for (name, key) in keys {
        let minter = Minter::builder("bench", key)
            .audience("backend")
            .lifetime(Duration::from_secs(300))
            .build()
            .unwrap();
        group.bench_function(format!("{name}_fresh"), |b| {
            b.iter_batched(
                principal,
                |p| black_box(minter.mint(&p).unwrap()),
                BatchSize::SmallInput,
            )
        });
        let cached = principal();
        let cache = MintCache::new();
        minter.mint_cached(&cached, &cache).unwrap();
        group.bench_function(format!("{name}_reused"), |b| {
            b.iter(|| black_box(minter.mint_cached(&cached, &cache).unwrap()))
        });
    }
    group.finish();
}

criterion_group!(mint, benches);
criterion_main!(mint);
