#!/usr/bin/env python3
"""Instructions per decision of sidecar binaries, counted by valgrind's callgrind.

Each binary runs as its own process under callgrind on the same config (with the fake upstream
of `common.py` for the jwt and ecmwf-api providers); a keep-alive client sends N1, then (in a
second run) N2 identical cache-hit requests to /authenticate, and the difference of the two
totals divided by N2 - N1 is the cost of one decision without startup. Instruction counts do
not move with the machine's noise, unlike req/s.

usage: benches/proc/instructions.py CONFIG LABEL=BINARY [LABEL=BINARY ...]
       benches/proc/instructions.py --profile OUT CONFIG BINARY
         (collects only while N2 requests are served, after startup and 100 warm-up
         requests; read OUT with `callgrind_annotate --inclusive=yes OUT`)
  env: N1 (default 200), N2 (default 1200), CASES (comma-separated among Basic, RS256 JWT,
       ECMWF key; default Basic), LEGACY (include_legacy_headers, default true),
       AOT_HEADER (an Authorization value instead of the cases), AOT_URI (X-Original-URI sent,
       default /), CALLGRIND_KEEP (a directory: keep the N2 profiles there, for
       callgrind_annotate)
"""
import os, re, shutil, subprocess, sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common


def send(port, header, n, name):
    import http.client
    uri = os.environ.get("AOT_URI", "/")
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    for _ in range(n):
        c.request("GET", "/authenticate", headers={"Authorization": header, "X-Original-URI": uri})
        r = c.getresponse(); r.read()
        if r.status != 200: raise SystemExit(f"{name}: status {r.status}")
    c.close()


def count(cmd, port, header, n, keep=None, ready=False, profile=None):
    """Total instructions of `cmd` (listening on `port`) serving n requests with `header`.
    With `profile` (a path), collects only while those requests run and writes the profile."""
    tmp = common.scratch("aot-instr-")
    out = profile or os.path.join(tmp, "callgrind.out")
    opts = ["--instr-atstart=no"] if profile else []
    proc = common.start(["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}", *opts,
                         *cmd], port)
    try:
        if ready:
            common.wait_ready(port, timeout=180)
        if profile:
            send(port, header, 100, cmd[0])
            subprocess.run(["callgrind_control", "-i", "on", str(proc.pid)], check=True,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        send(port, header, n, cmd[0])
        if profile:
            subprocess.run(["callgrind_control", "-i", "off", str(proc.pid)], check=True,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    finally:
        proc.terminate(); proc.wait(timeout=120)
    total = None
    with open(out) as f:
        for line in f:
            m = re.match(r"(?:summary|totals): (\d+)", line)
            if m: total = int(m.group(1))
    if keep:
        os.makedirs(keep, exist_ok=True)
        shutil.copy(out, os.path.join(keep, f"callgrind.{os.path.basename(cmd[0])}.{n}.out"))
    shutil.rmtree(tmp)
    return total


def per_request(make_cmd, header, ready=False):
    """Instructions per request: `make_cmd(port)` returns the command line of one process."""
    n1, n2 = int(os.environ.get("N1", 200)), int(os.environ.get("N2", 1200))
    keep = os.environ.get("CALLGRIND_KEEP")
    counts = []
    for n in (n1, n2):
        port = common.free_port()
        counts.append(count(make_cmd(port), port, header, n, keep if n == n2 else None, ready))
    return (counts[1] - counts[0]) / (n2 - n1)


def sidecar_cmd(binary, config, upstream, legacy, tokens=None):
    """A `make_cmd` for a sidecar binary on `config` (a template, see `common.render_config`);
    `tokens`: the directory of an API token store (see `common.TOKENS_SECTION`)."""
    def make(port):
        cfg = os.path.join(common.scratch("aot-cfg-"), "config.yaml")
        common.render_config(config, cfg, tokens=tokens, port=port, mport=common.free_port(),
                             upstream=upstream.port, legacy=legacy)
        return [binary, "--config", cfg]
    return make


def main():
    if len(sys.argv) < 3: raise SystemExit(__doc__)
    upstream = common.Upstream()
    if sys.argv[1] == "--profile":
        out, config, binary = sys.argv[2:5]
        case = os.environ.get("CASES", "Basic")
        header = os.environ.get("AOT_HEADER") or dict(upstream.cases())[case]
        port = common.free_port()
        cmd = sidecar_cmd(binary, config, upstream, os.environ.get("LEGACY", "true"))(port)
        n = int(os.environ.get("N2", 1200))
        total = count(cmd, port, header, n, ready=True, profile=os.path.abspath(out))
        print(f"{out}: {total / n:.0f} instructions per request collected")
        return
    config = sys.argv[1]
    legacy = os.environ.get("LEGACY", "true")
    if os.environ.get("AOT_HEADER"):
        cases = [("header", os.environ["AOT_HEADER"])]
    else:
        wanted = os.environ.get("CASES", "Basic").split(",")
        cases = [c for c in upstream.cases() if c[0] in wanted]
    rows = []
    for arg in sys.argv[2:]:
        label, binary = arg.split("=", 1)
        for case, header in cases:
            ipr = per_request(sidecar_cmd(binary, config, upstream, legacy), header, ready=True)
            rows.append((label, case, ipr))
            print(f"{label} {case}: {ipr:.0f} instructions per decision", flush=True)
    print("\n| binary | case | instructions / decision | ratio to the first binary |\n|---|---|---|---|")
    for label, case, ipr in rows:
        base = next(r[2] for r in rows if r[1] == case)
        print(f"| {label} | {case} | {ipr:.0f} | {ipr / base:.2f} |")


if __name__ == "__main__":
    main()
