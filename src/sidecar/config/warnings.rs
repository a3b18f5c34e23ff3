//! Settings that load and work but deserve a second look, reported by `--check` and logged at
//! startup. Drop-in auth-o-tron files must keep loading, so these are warnings, never errors.

use super::Config;

/// One line per questionable setting, naming the key.
pub fn warnings(config: &Config) -> Vec<String> {
    let mut out = Vec::new();
    for (key, url) in config.plain_http_urls() {
        let host = url
            .trim_start_matches("http://")
            .split(['/', '?', '#'])
            .next()
            .unwrap_or("");
        let host = host.rsplit_once('@').map_or(host, |(_, h)| h);
        let name = if host.starts_with('[') {
            host.split(']').next().map(|h| h.trim_start_matches('['))
        } else {
            host.split(':').next()
        }
        .unwrap_or("");
        let loopback = name == "localhost"
            || name
                .parse::<std::net::IpAddr>()
                .is_ok_and(|ip| ip.is_loopback());
        if !loopback {
            out.push(format!(
                "{key} is plain HTTP to {name:?}: credentials and keys cross the network \
                 unencrypted and can be read or changed on the way; use https:// unless this \
                 network is trusted"
            ));
        }
    }
    if config.jwt.algorithm == super::MintAlgorithm::HS256
        && let Some(secret) = &config.jwt.secret
        && secret.expose().len() < crate::mint::MIN_HMAC_SECRET_BYTES
    {
        out.push(format!(
            "jwt.secret has {} bytes, fewer than {}: anyone holding one minted token can guess \
             the secret offline and mint tokens every backend accepts. Rotate it: set a new \
             random secret of 32 bytes or more (`openssl rand -base64 48`) in jwt.secret (or \
             jwt.secret_file / AOT_JWT__SECRET) and in the backends at the same time",
            secret.expose().len(),
            crate::mint::MIN_HMAC_SECRET_BYTES
        ));
    }
    for (i, p) in config.providers.iter().enumerate() {
        out.extend(p.entry.warnings(&format!("providers[{i}]"), &p.keys.name));
    }
    out
}
