#!/usr/bin/env bash
# Runs every test: formatting, lints, unit, integration, end-to-end (real nginx, Caddy, an
# OpenID Provider run by Node, OpenLDAP slapd) and doc tests. Installs the external programs
# the end-to-end tests need when they are missing.
set -euo pipefail
cd "$(dirname "$0")/.."

need_apt=()
command -v nginx >/dev/null 2>&1 || need_apt+=(nginx-light)
command -v caddy >/dev/null 2>&1 || need_apt+=(caddy)
command -v node >/dev/null 2>&1 || need_apt+=(nodejs)
command -v npm >/dev/null 2>&1 || need_apt+=(npm)
[ -x /usr/sbin/slapd ] || need_apt+=(slapd)
if ((${#need_apt[@]})); then
    echo "installing: ${need_apt[*]}"
    SUDO=""
    [ "$(id -u)" -eq 0 ] || SUDO="sudo"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need_apt[@]}"
fi

# The real OpenID Provider used by the provider tests.
if [ ! -d tests/fixtures/oidc/node_modules/oidc-provider ]; then
    (cd tests/fixtures/oidc && npm ci --no-audit --no-fund)
fi

cargo fmt --all -- --check
cargo clippy --all-targets --all-features -- -D warnings
cargo test --all-features
