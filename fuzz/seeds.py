#!/usr/bin/env python3
"""Writes the seed corpora of the fuzz targets (fuzz/corpus/<target>/seed-*).

Seeds come from the tests (tokens, JWKS documents, DNs), examples/config.demo.yaml and the
config shapes of shared/notes/auth-o-tron-contract.md. Selector bytes follow each target's
module comment. Run from the repository root: python3 fuzz/seeds.py
"""
import base64, json, os, pathlib, hashlib

ROOT = pathlib.Path(__file__).resolve().parent.parent
CORPUS = ROOT / "fuzz" / "corpus"
EXP = 4102444800  # 2100-01-01: seeds stay unexpired


def b64(b):
    return base64.urlsafe_b64encode(b).rstrip(b"=").decode()


def write(target, data):
    d = CORPUS / target
    d.mkdir(parents=True, exist_ok=True)
    if isinstance(data, str):
        data = data.encode()
    (d / ("seed-" + hashlib.sha1(data).hexdigest()[:16])).write_bytes(data)


# 1. credentials
for v in [
    "Bearer abc.def.ghi", "Basic YWxpY2U6eA==, Bearer t", "EmailKey a@b:c", "Plain x",
    "bearer abc", "PLAIN YTpi", "EmailKey a@b.c:k1", "Bearer t, Basic YTpi ,EmailKey a@b:c",
    "Basic YTpi, Basic YTpi", "Bearer a, bearer b", "Bearer a, Basic b, EmailKey x:y, Digest z",
    "Bearer", "Bearer a b", "Bearer a,", ", Bearer a", "Bearer\ta", "Digest abc", "   ",
    "Bearer eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJhIn0.c2ln==", "Bearer a\x00Basic YTpi",
    "session=tok.en; a=1", "Negotiate YIIB, Bearer x", "Bearer  x", "Basic   YWxpY2U6d29uZGVybGFuZA==",
]:
    write("credentials", v)

# 2. jwt_claims (selector: bits 0-2 mode, bits 3-7 settings variant)
claims = [
    {"sub": "alice", "iss": "https://idp.example/realms/r", "aud": "api", "iat": 1700000000, "exp": EXP},
    {"preferred_username": "bob", "sub": "b", "exp": EXP, "scope": "openid read write",
     "realm_access": {"roles": ["user", "admin"]}, "entitlements": ["e1"],
     "resource_access": {"app": {"roles": ["r1", "user"]}}, "email": "bob@example.org",
     "groups": ["g1", "g2"], "ext": {"login": "bob-ext"}},
    {"sub": "svc", "exp": EXP, "aud": ["a", "b"], "nbf": 1, "custom": {"nested": [1, 2, {"x": None}]}},
    {"sub": "", "exp": EXP}, {"sub": "x", "exp": "soon"}, {"sub": "x", "exp": EXP, "iss": ["a"]},
    {"sub": "x", "exp": EXP, "iat": EXP * 2}, {"preferred_username": "a\u0007b", "exp": EXP},
]
headers = [
    {"alg": "ES256", "kid": "k1", "typ": "at+jwt"}, {"alg": "RS256", "typ": "JWT"},
    {"alg": "HS256"}, {"alg": "none"}, {"alg": "ES256", "cty": "JWT"},
    {"alg": "EdDSA", "typ": "application/at+jwt", "crit": ["x"]},
]
for variant in [0, 1, 2, 3, 4, 8, 12, 16, 31]:
    for c in claims:
        cj = json.dumps(c).encode()
        write("jwt_claims", bytes([(variant << 3) | 2]) + cj)
        for h in headers[:3]:
            hj = json.dumps(h).encode()
            write("jwt_claims", bytes([(variant << 3) | 1]) + hj + b"\0" + cj + b"\0" + b"sig")
            write("jwt_claims", bytes([variant << 3]) + f"{b64(hj)}.{b64(cj)}.c2ln".encode())
for h in headers:
    write("jwt_claims", bytes([1]) + json.dumps(h).encode() + b"\0" + json.dumps(claims[0]).encode() + b"\0")

# 3. jwks
ec = {"kty": "EC", "crv": "P-256", "kid": "ec1",
      "x": "f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU", "y": "x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"}
n2048 = b64(b"\xc5" + bytes(range(255)))  # 2048-bit modulus
rsa = {"kty": "RSA", "kid": "r1", "alg": "RS256", "use": "sig", "n": n2048, "e": "AQAB"}
ed = {"kty": "OKP", "crv": "Ed25519", "kid": "ed", "x": "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"}
p384 = {"kty": "EC", "crv": "P-384", "alg": "ES384",
        "x": "iA7lWQLzVrKGEFjfGMfMHfTEZ2KnLiKU7JuNT3E7ygsfE7ygsfE7ygsfE7ygsfE7",
        "y": "mjnF9PXwgiRrm8GeMCsDb0yLSrxpcrlgbxDFcZvHuvRiJbHVbdHkq3fCwTpAtpi9"}
odd = [
    {"kty": "oct", "k": "c2VjcmV0", "kid": "h"}, {"kty": "oct", "k": "c2VjcmV0", "alg": "RS256"},
    {"kty": "OKP", "crv": "Ed448", "x": "AAAA"}, {"kty": "RSA", "n": "AQAB", "e": "AQAB"},
    {"kty": "RSA", "kid": 5, "n": n2048, "e": "AQAB"}, dict(ec, use="enc"), dict(ec, alg="RS256"),
    dict(ec, d="secret"), dict(ec, key_ops=["sign"]), dict(rsa, alg="HS256"), "garbage",
]
write("jwks", json.dumps({"keys": [ec]}))
write("jwks", json.dumps({"keys": [rsa, ec, ed, p384]}))
write("jwks", json.dumps({"keys": odd + [ec]}))
for k in odd:
    write("jwks", json.dumps({"keys": [k]}))
write("jwks", json.dumps({"keys": []}))
write("jwks", "<html>")
write("jwks", json.dumps({"keys": [dict(ec, kid="a"), dict(ec, kid="a")]}))

# 4. remote_answers (selector: bits 0-3 answer, bits 4-7 status index; 0 = 200, 9 = 401)
def remote(answer, status_index, body):
    write("remote_answers", bytes([(status_index << 4) | answer]) + (body.encode() if isinstance(body, str) else body))

intros = [
    {"active": True, "username": "alice", "scope": "read write", "exp": EXP, "aud": "fuzz-aud",
     "iss": "https://fuzz.invalid/issuer", "client_id": "c", "token_type": "Bearer"},
    {"active": True, "sub": "s", "aud": ["x", "fuzz-aud"], "iss": "https://fuzz.invalid/issuer"},
    {"active": True, "client_id": "svc"}, {"active": False}, {"active": "true", "sub": "x"},
    {"active": True, "sub": "x", "token_type": "refresh_token"}, {"active": True, "sub": "x", "exp": 1},
    {"active": True, "sub": "x", "exp": "later"}, {"active": True, "username": "a\nb"},
]
for d in intros:
    remote(0, 0, json.dumps(d)); remote(1, 0, json.dumps(d))
remote(0, 0, "[]")
for st in [0, 9, 10, 13]:
    remote(2, st, json.dumps({"uid": "u1", "email": "A@B.org"}))
    remote(3, st, b"a@b.org\0" + json.dumps({"uid": "u1", "email": "A@B.org"}).encode())
    remote(4, st, json.dumps({"username": "efasuser", "roles": ["r"], "email": "e@x"}))
    remote(5, st, json.dumps({"active": True, "scope": "openid offline_access"}))
    remote(6, st, json.dumps({"access_token": "a.b.c", "refresh_token": "r2", "expires_in": 300}))
    remote(7, st, json.dumps({"active": True}))
    remote(8, st, json.dumps({"access_token": "a.b.c", "expires_in": 300}))
remote(3, 0, b"x@y\0" + json.dumps({"uid": "u1"}).encode())
remote(2, 0, json.dumps({"uid": ""}))
remote(4, 0, json.dumps({"username": ""}))
remote(5, 0, json.dumps({"active": True, "scope": "offline_accessx"}))
remote(6, 8, json.dumps({"error": "invalid_grant"}))
remote(6, 9, json.dumps({"error": "invalid_client"}))
remote(8, 8, "{}")

# 5. config
yamls = [(ROOT / "examples" / "config.demo.yaml").read_text()]
yamls.append(yamls[0].replace('password_hash: "$argon2id$v=19$m=19456,t=2,p=1$916cZPFMlCDsYxAMYV4IYw$27HR5LztoyjkQ1tXgFq9fMLeYKFHb7OQGlVUmWPIErg"', "password: wonderland")
             .replace('password_hash: "$argon2id$v=19$m=19456,t=2,p=1$AXaKCGAgQMQU2srot1+Amw$B3AIxZ3kuGq+vy7CJdNrcbLIA6EP1vpkbPZwqORDLAo"', "password: builder"))
minimal = '''version: "2.0.0"
server: {port: 8080}
providers:
  - {type: plain, name: local, realm: localrealm, users: [{username: alice, password: alicepass}]}
jwt: {iss: my-issuer, exp: 3600, secret: change-me}
store: {enabled: false}
services: []
logging: {level: info, format: json}
'''
yamls.append(minimal)
yamls.append(minimal.replace('version: "2.0.0"\nserver: {port: 8080}', 'version: "1.0.0"\nbind_address: "[::1]:8181"'))
yamls.append('''version: "2.0.0"
server: {port: 8080}
providers:
  - {type: plain, name: local, realm: local, users: [{username: a, password: b}]}
  - {type: jwt, name: kc, realm: kc, cert_uri: "https://idp.example/certs", iam_realm: x}
  - {type: jwt, name: oidc, realm: o, issuer: "https://idp.example", audience: [a, b], algorithms: [ES256], leeway: 30, typ: at+jwt, username_claim: email, roles_claim: [app, roles]}
  - {type: ecmwf-api, name: ecmwf, realm: ecmwf, uri: "https://api.ecmwf.int/v1", check_email: true}
  - {type: efas-api, name: efas, realm: efas, uri: "https://efas.example/user"}
  - {type: openid-offline, name: desp, realm: desp, cert_uri: "https://iam.example/certs", public_client_id: p,
     private_client_id: q, private_client_secret: s, iam_url: "https://iam.example"}
  - {type: ecmwf-token-generator, name: tg, realm: tg, cert_uri: "https://iam.example/certs", client_id: c,
     client_secret: s, token_generator_url: "https://tg.example"}
  - {type: introspection, name: rfc7662, realm: o, endpoint: "https://as.example/introspect", client_id: c, client_secret: s, client_auth: form}
augmenters:
  - {type: plain, name: basic_roles, realm: local, roles: {admin: [alice, bob]}}
  - {type: ldap, name: ad, realm: local, uri: "ldap://ldap.example", search_base: "dc=example,dc=org", ldap_password: p, bind_dn: "cn=svc,dc=example,dc=org", filters: ["OU=Teams,OU=Apps"]}
  - {type: plain_advanced, name: adv, realm: local, match: {username: [a], role: [admin]}, augment: {roles: [x], attributes: {k: v}}}
jwt: {iss: i, exp: 60, secret: 0123456789abcdef0123456789abcdef, aud: svc}
cache: {capacity: 100, negative_ttl_seconds: 5, negative_capacity: 10}
http: {connect_timeout_ms: 100, timeout_ms: 200, max_body_bytes: 1000, allow_http: true}
metrics: {enabled: false}
rules:
  - {path: /admin, roles: [admin]}
  - {path: /reports, methods: [DELETE, post], any_roles: [a, b], attributes: {team: ops}, scopes: {svc: [read]}}
  - {path: /ops, host: "Admin.Example.org:443", roles: [admin]}
''')
for y in yamls:
    write("config", y)
write("config", minimal + "\0AOT_JWT__ISS=env-iss\nAOT_SERVER__PORT=9000\nAOT_PROVIDERS__0__USERS__0__ROLES=[a, b]\nAOT_CACHE={capacity=5}\nAOT_JWT__EXP=\"60\"\n")
write("config", minimal.replace("level: info", "level: loud"))
write("config", "- a\n- b")
write("config", "a: [")

# 6. ldap_entries (odd selector: text; even: BER)
for text in [
    "\nCN=R,OU=B,OU=A,DC=example,DC=org\ncn=users,ou=groups,dc=x",
    "filter=OU=B\nCN=R,OU=B,OU=A,DC=example,DC=org\nCN=Z,OU=C",
    "filters=OU=A|ou=b,ou=a|OU=Teams,OU=Apps\nCN=R,OU=B,OU=A,DC=example,DC=org\nCN=T1,OU=Teams,OU=Apps,DC=x",
    "filters=nonsense\nCN=R", "\nOU=B,DC=x\nCN=a\\,b,OU=x\nCN=,OU=y\n CN = spaced , OU = z",
    "*)(uid=*\nCN=é,DC=x", "filters=OU=A\nOU=A,CN=R",
]:
    write("ldap_entries", b"\x01" + text.encode())

def ber(tag, content):
    n = len(content)
    if n < 128:
        length = bytes([n])
    else:
        b = n.to_bytes((n.bit_length() + 7) // 8, "big")
        length = bytes([0x80 | len(b)]) + b
    return bytes([tag]) + length + content

def entry(dn, attrs):
    al = b"".join(ber(0x30, ber(0x04, t) + ber(0x31, b"".join(ber(0x04, v) for v in vals))) for t, vals in attrs)
    return ber(0x64, ber(0x04, dn) + ber(0x30, al))

write("ldap_entries", b"\x00" + entry(b"cn=u,dc=x", [(b"memberOf", [b"CN=R,OU=B,DC=x", b"cn=g2,dc=x"]), (b"cn", [b"u"])]))
write("ldap_entries", b"\x00" + entry(b"\xff\xfe", [(b"memberOf", [b"CN=R"])]))
write("ldap_entries", b"\x00" + entry(b"cn=u", [(b"memberOf", [b"\xffbinary", b"CN=ok"])]))
write("ldap_entries", b"\x00" + ber(0x64, ber(0x04, b"cn=u")))
write("ldap_entries", b"\x00" + ber(0x73, ber(0x04, b"ldap://other/dc=x")))
print("seeds written to", CORPUS)
