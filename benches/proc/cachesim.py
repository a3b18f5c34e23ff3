#!/usr/bin/env python3
"""Simulated cache and branch behaviour per request, bare against the sidecar: callgrind with
`--cache-sim=yes --branch-sim=yes` (set through VALGRIND_OPTS), each binary serving 200 and
then 1 200 requests on one keep-alive connection; the difference over 1 000 is one request.

usage: VALGRIND_OPTS="--cache-sim=yes --branch-sim=yes" python3 benches/proc/cachesim.py
env: CASE (Basic, RS256 JWT, ECMWF key), LEGACY (default false), SIDECAR, BARE (binaries;
     default the release builds of `ratio.py`), KEEP (a directory: keep the four profiles
     there, as bare.200, bare.1200, sidecar.200, sidecar.1200, for `profdiff.py`)
"""
import os, re, shutil, sys
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common, instructions, ratio
up = common.Upstream(); header = dict(up.cases())[os.environ.get("CASE", "Basic")]
legacy = os.environ.get("LEGACY", "false")
target = os.environ.get("CARGO_TARGET_DIR", os.path.join(ratio.ROOT, "target"))
side = os.environ.get("SIDECAR", os.path.join(target, "release", "examples", "sidecar"))
bare = os.environ.get("BARE", os.path.join(target, "release", "examples", "bare"))
# the headers bare must send: what a sidecar sends for this case
sport = common.free_port()
cfg = os.path.join(common.scratch("aot-c-"), "c.yaml")
common.render_config(ratio.CONFIG, cfg, tokens=None, port=sport, mport=common.free_port(), upstream=up.port, legacy=legacy)
p = common.start([side, "--config", cfg], sport); common.wait_ready(sport)
args = ratio.header_args(ratio.decision_headers(sport, os.environ.get("CASE", "Basic"), header))
p.terminate(); p.wait()
def one(make, n, ready, label):
    port = common.free_port(); keep = common.scratch("aot-k-")
    instructions.count(make(port), port, header, n, keep=keep, ready=ready)
    f = os.path.join(keep, os.listdir(keep)[0]); txt = open(f).read()
    if os.environ.get("KEEP"):
        os.makedirs(os.environ["KEEP"], exist_ok=True)
        shutil.copy(f, os.path.join(os.environ["KEEP"], f"{label}.{n}"))
    ev = re.search(r"^events: (.*)$", txt, re.M).group(1).split()
    tot = re.search(r"^(?:summary|totals): (.*)$", txt, re.M).group(1).split()
    return dict(zip(ev, [int(t) for t in tot]))
def events(make, ready, label):
    a, b = one(make, 200, ready, label), one(make, 1200, ready, label)
    return {k: (b[k] - a[k]) / 1000 for k in a}
b = events(lambda p: [bare, "--port", str(p), *args], False, "bare")
s = events(instructions.sidecar_cmd(side, ratio.CONFIG, up, legacy), True, "sidecar")
print("| event | bare | sidecar | ratio |\n|---|---|---|---|")
for k in b: print(f"| {k} | {b[k]:.0f} | {s[k]:.0f} | {s[k] / b[k]:.2f} |" if b[k] >= 1 else f"| {k} | {b[k]:.0f} | {s[k]:.0f} | – |")
