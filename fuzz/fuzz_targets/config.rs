//! The sidecar's configuration loader: YAML text and `AOT_*` environment → `Config`, then
//! `Config::build` (which does no network I/O).
//!
//! Input: YAML, optionally followed by NUL and `KEY=value` lines (the environment).
//! Properties: nothing panics; every refusal names what to fix: a `Key` error has a non-empty
//! key and message and reads ``config key `...`: ...``, a `Yaml` error has a message; a loaded
//! config has a provider; `build` fails only with a `Key`
//! error. `build` is skipped for configs that read files (`secret_file`, `key_file`,
//! `previous_keys`: the fuzzer would read `/dev/zero`) or hash Argon2 dummies
//! (`password_hash`: cost parameters come from the file, seconds per input).
#![no_main]

use auth_o_tron::sidecar::config::entries::PlainEntry;
use auth_o_tron::sidecar::config::{Config, ConfigError};
use libfuzzer_sys::fuzz_target;

fn check_error(e: &ConfigError) {
    let text = e.to_string();
    match e {
        ConfigError::Key { key, message } => {
            assert!(!key.is_empty(), "an error without a key: {text}");
            assert!(!message.is_empty(), "an error without a message: {text}");
            assert!(text.starts_with("config key `"), "{text}");
        }
        ConfigError::Yaml(m) => assert!(!m.is_empty()),
        ConfigError::Io { .. } => panic!("from_yaml never reads a file"),
        _ => {}
    }
}

fn builds_safely(c: &Config) -> bool {
    let jwt = &c.jwt;
    jwt.secret_file.is_none()
        && jwt.key_file.is_none()
        && jwt.previous_keys.is_empty()
        && c.providers.iter().all(|p| {
            p.entry_as::<PlainEntry>()
                .is_none_or(|e| e.users.iter().all(|u| u.password_hash.is_none()))
        })
}

fuzz_target!(|data: &[u8]| {
    let (yaml, env) = match data.iter().position(|b| *b == 0) {
        Some(i) => (&data[..i], &data[i + 1..]),
        None => (data, &[][..]),
    };
    let Ok(yaml) = std::str::from_utf8(yaml) else {
        return;
    };
    let env: Vec<(String, String)> = String::from_utf8_lossy(env)
        .lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
    let loaded = match Config::from_yaml(yaml, env) {
        Ok(l) => l,
        Err(e) => return check_error(&e),
    };
    let config = loaded.config;
    assert!(!config.providers.is_empty());
    assert!(loaded.warnings.iter().all(|w| !w.is_empty()));
    if builds_safely(&config) {
        if let Err(e) = config.build() {
            assert!(matches!(e, ConfigError::Key { .. }), "{e:?}");
            check_error(&e);
        }
    }
});
