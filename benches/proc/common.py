"""Shared by the process benchmarks (`ratio.py`, `instructions.py`): the fake upstream that the
jwt and ecmwf-api providers of `config.yaml` call, the three cache-hit credentials, the config
template, and starting a server process.

The upstream is a tiny HTTP server in the benchmark's own process: `/certs` serves the JWKS of
the RS256 test key in `benches/keys`, `/v1/who-am-i?token=<key>` answers like ECMWF's Web-API
for one key. Decisions under load are cache hits; the upstream sees only the first request of
each credential and one refresh per cache lifetime (60 s for ECMWF keys).
"""
import atexit, base64, http.client, json, os, shutil, socket, subprocess, tempfile, threading, time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

HERE = os.path.dirname(os.path.abspath(__file__))
KEY = os.path.join(HERE, "..", "keys", "rs256-test-key.pem")
ISSUER = "https://idp.example/realms/bench"
ECMWF_KEY = "3f9c2a7be41d08c5a6e2f7b1d4c93e80"


def scratch(prefix):
    """A temporary directory that is removed when the script exits (also on an error)."""
    path = tempfile.mkdtemp(prefix=prefix)
    atexit.register(shutil.rmtree, path, True)
    return path


def free_port():
    s = socket.socket(); s.bind(("127.0.0.1", 0)); p = s.getsockname()[1]; s.close(); return p


def b64url(b):
    return base64.urlsafe_b64encode(b).rstrip(b"=").decode()


def rs256_token_and_jwks():
    """A ~1 KB RS256 access token (Keycloak-shaped claims) and the JWKS that verifies it."""
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import padding
    with open(KEY, "rb") as f:
        key = serialization.load_pem_private_key(f.read(), password=None)
    pub = key.public_key().public_numbers()
    n = pub.n.to_bytes((pub.n.bit_length() + 7) // 8, "big")
    jwks = {"keys": [{"kty": "RSA", "kid": "bench", "use": "sig", "alg": "RS256",
                      "n": b64url(n), "e": b64url(pub.e.to_bytes(3, "big"))}]}
    now = int(time.time())
    claims = {
        "exp": now + 86400, "iat": now, "jti": "0b5e1c7e-2d3f-4a6b-9c8d-7e6f5a4b3c2d",
        "iss": ISSUER, "aud": "api", "sub": "7c1d5a0e-4b8f-4c1e-9f0a-2b6d8e3f1a9c",
        "typ": "Bearer", "azp": "portal", "sid": "5a4b3c2d-1e0f-4a9b-8c7d-6e5f4a3b2c1d",
        "scope": "openid profile email api:read api:write",
        "realm_access": {"roles": ["user", "reader", "offline_access", "uma_authorization"]},
        "resource_access": {"account": {"roles": ["manage-account", "view-profile"]}},
        "email_verified": True, "name": "Alice Liddell", "preferred_username": "alice",
        "given_name": "Alice", "family_name": "Liddell", "email": "alice@example.org",
    }
    head = b64url(json.dumps({"alg": "RS256", "typ": "JWT", "kid": "bench"}).encode())
    body = b64url(json.dumps(claims, separators=(",", ":")).encode())
    signing = f"{head}.{body}".encode()
    sig = key.sign(signing, padding.PKCS1v15(), hashes.SHA256())
    return f"{head}.{body}.{b64url(sig)}", jwks


class Upstream:
    """The fake IdP and ECMWF API, serving on a free port in a background thread."""

    def __init__(self):
        self.token, jwks = rs256_token_and_jwks()
        jwks_body = json.dumps(jwks).encode()
        who = json.dumps({"uid": "bench-user", "email": "bench@example.org"}).encode()
        hits = self.hits = {"certs": 0, "who-am-i": 0}

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                path, _, query = self.path.partition("?")
                if path == "/certs":
                    hits["certs"] += 1; status, body = 200, jwks_body
                elif path == "/v1/who-am-i" and query == f"token={ECMWF_KEY}":
                    hits["who-am-i"] += 1; status, body = 200, who
                else:
                    status, body = 403, b'{"error":"forbidden"}'
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def cases(self):
        """(name, Authorization header value) of the three cache-hit cases."""
        basic = "Basic " + base64.b64encode(b"alice:alicepass").decode()
        return [("Basic", basic), ("RS256 JWT", f"Bearer {self.token}"),
                ("ECMWF key", f"Bearer {ECMWF_KEY}")]


# API tokens on (the `token` case): a catalogue and a SQLite store in the directory `{tokens}`.
TOKENS_SECTION = """
services:
  - {name: polytope, scopes: [read]}
tokens: {enabled: true, store: "sqlite://{tokens}/tokens.db"}
"""


def render_config(template, path, tokens=None, **values):
    """Writes `template` with `{name}` placeholders (port, mport, upstream, legacy) filled;
    with `tokens` (a directory), API tokens on with their store there."""
    with open(template) as f:
        text = f.read()
    if tokens:
        text += TOKENS_SECTION.replace("{tokens}", tokens)
    for k, v in values.items():
        text = text.replace("{" + k + "}", str(v))
    with open(path, "w") as f:
        f.write(text)


def create_token(port):
    """An `Authorization` value with a new API token of alice's (POST /tokens, Basic), stored
    in the sidecar's token store: later sidecars on the same store accept it too."""
    basic = "Basic " + base64.b64encode(b"alice:alicepass").decode()
    request = json.dumps({"name": "bench", "scopes": {"polytope": ["read"]}})
    deadline = time.time() + 30
    while True:
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        c.request("POST", "/tokens", body=request,
                  headers={"Authorization": basic, "Content-Type": "application/json"})
        r = c.getresponse(); body = r.read(); c.close()
        if r.status == 201: return "Bearer " + json.loads(body)["token"]
        # 503 while the store opens in the background.
        if r.status != 503 or time.time() > deadline:
            raise SystemExit(f"POST /tokens answered {r.status}: {body[:200]!r}")
        time.sleep(0.1)


def wait_listening(proc, port, timeout=120):
    deadline = time.time() + timeout
    while True:
        if proc.poll() is not None:
            raise SystemExit(f"{proc.args[0]} exited with {proc.returncode}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close(); return
        except OSError:
            if time.time() > deadline: raise SystemExit(f"{proc.args} did not start")
            time.sleep(0.1)


def get(port, path, headers, timeout=60):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    c.request("GET", path, headers=headers)
    r = c.getresponse(); body = r.read(); c.close()
    return r.status, r.getheaders(), body


def wait_ready(port, timeout=60):
    """Until the sidecar's `/ready` says every provider loaded its keys."""
    deadline = time.time() + timeout
    while get(port, "/ready", {})[0] != 200:
        if time.time() > deadline: raise SystemExit("the sidecar never became ready")
        time.sleep(0.1)


def start(cmd, port, **kw):
    """`cmd` started and listening on `port`; killed again if it does not get there."""
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, **kw)
    try:
        wait_listening(proc, port)
    except BaseException:
        proc.kill(); proc.wait(); raise
    return proc
