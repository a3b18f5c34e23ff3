#!/usr/bin/env python3
"""The sidecar as operators run it, against a bare axum endpoint: two processes, wrk, ratios.

Builds the release `sidecar` and `bare` examples, starts the fake upstream of `common.py`, then
for each legacy-header setting starts the sidecar on `config.yaml` (plain, jwt RS256, ecmwf-api;
metrics on, JSON logs at warn) and the bare binary answering `/authenticate` with exactly the
headers the sidecar sent for a hit of that case (one bare process per case: a 1 KB JWT's
principal gets a longer minted token than Basic's). For each case (Basic, ~1 KB RS256 JWT,
ECMWF key, all cache hits) and connection count, rounds alternate bare, sidecar, bare, ...;
each cell is the median of the rounds. CPU per request is the server's utime+stime delta
(/proc/PID/stat) over wrk's request count. Then instructions per request (callgrind, `instructions.py`) of both.

usage: benches/proc/ratio.py
  env: SECS (per wrk run, default 5), ROUNDS (default 3), CONNS (default 64,1),
       LEGACY (default true,false), CASES (default the three above; `token` adds an API token:
       then the sidecar runs with API tokens on, a SQLite store and a token of alice's created
       by POST /tokens before the runs, for every case), INSTR (default 1: also count
       instructions, legacy on), NICE (niceness of both servers, e.g. -5), PIN (1: wrk on CPU 0,
       servers on CPU 1), NO_BUILD (1: use the binaries already built), SIDECAR and BARE (other
       binaries, e.g. a `--profile release-lto` build; imply NO_BUILD), OUT (also write the
       tables to this file), RAW (also write every round's numbers to this file, JSON)

With ROUNDS of 10 or more, a second table gives each cell's p99 ratio with a bootstrap 90 %
interval (rounds resampled with replacement, bare and sidecar apart, 2 000 times): a cell's
round p99s span 2-3x on this machine, so a cell's interval says whether the run could
tell its ratio from the target at all.
"""
import json, os, random, re, statistics, subprocess, sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common, instructions

ROOT = os.path.abspath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
CONFIG = os.path.join(ROOT, "benches", "proc", "config.yaml")
TICK = os.sysconf("SC_CLK_TCK")
# Headers both servers send but that are not the decision's: left to each server.
SKIP = {"content-type", "content-length", "date"}


def env(name, default):
    return os.environ.get(name, default)


def binaries():
    target = env("CARGO_TARGET_DIR", os.path.join(ROOT, "target"))
    if env("SIDECAR", "") or env("BARE", ""):
        return (env("SIDECAR", os.path.join(target, "release", "examples", "sidecar")),
                env("BARE", os.path.join(target, "release", "examples", "bare")))
    if env("NO_BUILD", "0") != "1":
        subprocess.run(["cargo", "build", "--release", "--example", "sidecar", "--example", "bare"],
                       cwd=ROOT, check=True)
    return (os.path.join(target, "release", "examples", "sidecar"),
            os.path.join(target, "release", "examples", "bare"))


def prefix(role):
    """`nice` and `taskset` for a server (`role` server) or for wrk."""
    p = []
    if env("PIN", "0") == "1":
        p += ["taskset", "-c", "1" if role == "server" else "0"]
    if role == "server" and env("NICE", ""):
        p += ["nice", "-n", env("NICE", "")]
    return p


def cpu_ticks(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])  # utime, stime (fields 14 and 15)


def micros(text):
    m = re.match(r"([\d.]+)(us|ms|s|m)$", text)
    return float(m.group(1)) * {"us": 1, "ms": 1e3, "s": 1e6, "m": 6e7}[m.group(2)]


def wrk(port, header, conns, secs, pid):
    before = cpu_ticks(pid)
    out = subprocess.run(prefix("wrk") + [
        "wrk", f"-t{min(2, conns)}", f"-c{conns}", f"-d{secs}s", "--latency",
        "-H", f"Authorization: {header}", "-H", "X-Original-URI: /",
        f"http://127.0.0.1:{port}/authenticate"], capture_output=True, text=True, check=True).stdout
    cpu = (cpu_ticks(pid) - before) / TICK
    if "Non-2xx" in out or "Socket errors" in out:
        raise SystemExit(f"wrk saw errors:\n{out}")
    n = int(re.search(r"(\d+) requests in", out).group(1))
    return {"rps": float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)),
            "p99": micros(re.search(r"^\s+99%\s+(\S+)", out, re.M).group(1)),
            "cpu": cpu * 1e6 / n}


def decision_headers(port, name, header):
    """The headers the sidecar on `port` sends for a hit of `header` (what bare must send)."""
    status, headers, _ = common.get(port, "/authenticate",
                                    {"Authorization": header, "X-Original-URI": "/"})
    if status != 200: raise SystemExit(f"{name}: sidecar answered {status}")
    return [(k, v) for k, v in headers if k.lower() not in SKIP]


def header_args(sent):
    """`bare`'s command-line arguments that make it send `sent`."""
    return [a for k, v in sent for a in ("--header", f"{k}: {v}")]


def median(runs, key):
    return statistics.median(r[key] for r in runs)


def interval(b, s, key, n=2000, seed=11):
    """A bootstrap 90 % interval of median(s) / median(b), resampling rounds of each."""
    rng = random.Random(seed)
    bv, sv = [r[key] for r in b], [r[key] for r in s]
    ratios = sorted(statistics.median(rng.choices(sv, k=len(sv)))
                    / statistics.median(rng.choices(bv, k=len(bv))) for _ in range(n))
    return ratios[int(n * 0.05)], ratios[int(n * 0.95) - 1]


def main():
    sidecar, bare = binaries()
    secs, rounds = int(env("SECS", "5")), int(env("ROUNDS", "3"))
    conns_list = [int(c) for c in env("CONNS", "64,1").split(",")]
    upstream = common.Upstream()
    wanted = env("CASES", "Basic,RS256 JWT,ECMWF key").split(",")
    cases = [c for c in upstream.cases() if c[0] in wanted]
    # The token case: API tokens on for the whole run (so Basic beside it runs on the same
    # configuration), the token created once in a store every sidecar of the run shares.
    tokens = common.scratch("aot-ratio-tokens-") if "token" in wanted else None
    lines = ["| legacy | case | conns | bare req/s | sidecar req/s | **ratio** | bare p99 | "
             "sidecar p99 | **p99 ratio** | bare CPU µs/req | sidecar CPU µs/req | **CPU ratio** |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    print("\n".join(lines), flush=True)
    spread = ["", "| legacy | case | conns | **p99 ratio** | 90 % interval | sidecar p99 lower in |",
              "|---|---|---|---|---|---|"]
    raw = []
    legacy_on_headers = {}  # per case, for the instruction counts (legacy on)
    for legacy in env("LEGACY", "true,false").split(","):
        label = "on" if legacy == "true" else "off"
        sport = common.free_port()
        cfg = os.path.join(common.scratch("aot-ratio-"), "config.yaml")
        common.render_config(CONFIG, cfg, tokens=tokens, port=sport, mport=common.free_port(),
                             upstream=upstream.port, legacy=legacy)
        side = common.start(prefix("server") + [sidecar, "--config", cfg], sport)
        try:
            common.wait_ready(sport)
            if tokens and not any(c[0] == "token" for c in cases):
                cases.append(("token", common.create_token(sport)))
            for name, header in cases:
                sent = decision_headers(sport, name, header)
                if legacy == "true":
                    legacy_on_headers[name] = sent
                bport = common.free_port()
                bproc = common.start(prefix("server") + [bare, "--port", str(bport),
                                                         *header_args(sent)], bport)
                try:
                    for port, pid in ((bport, bproc.pid), (sport, side.pid)):
                        wrk(port, header, 64, 1, pid)  # warm-up
                    for conns in conns_list:
                        b, s = [], []
                        for _ in range(rounds):
                            b.append(wrk(bport, header, conns, secs, bproc.pid))
                            s.append(wrk(sport, header, conns, secs, side.pid))
                        br, sr = median(b, "rps"), median(s, "rps")
                        bp, sp = median(b, "p99"), median(s, "p99")
                        bc, sc = median(b, "cpu"), median(s, "cpu")
                        line = (f"| {label} | {name} | {conns} | "
                                f"{br:.0f} | {sr:.0f} | **{sr / br:.2f}** | {bp:.0f} µs | "
                                f"{sp:.0f} µs | **{sp / bp:.2f}** | {bc:.2f} | {sc:.2f} | "
                                f"**{sc / bc:.2f}** |")
                        lines.append(line)
                        print(line, flush=True)
                        raw.append({"legacy": legacy, "case": name, "conns": conns,
                                    "bare": b, "sidecar": s})
                        if rounds >= 10:
                            lo, hi = interval(b, s, "p99")
                            lower = sum(x["p99"] < y["p99"] for x, y in zip(s, b))
                            spread.append(f"| {label} | {name} | {conns} | **{sp / bp:.2f}** | "
                                          f"{lo:.2f}-{hi:.2f} | {lower} of {rounds} round pairs |")
                finally:
                    bproc.terminate(); bproc.wait()
        finally:
            side.terminate(); side.wait()
    if rounds >= 10:
        print("\n".join(spread), flush=True)
        lines += spread
    if env("RAW", ""):
        with open(env("RAW", ""), "w") as f:
            json.dump(raw, f, indent=1)
    if env("INSTR", "1") == "1" and legacy_on_headers:
        rows = ["", "| case | bare instructions / request | sidecar instructions / request | "
                "**ratio** | sidecar − bare |", "|---|---|---|---|---|"]
        print("\n".join(rows), flush=True)
        for name, header in cases:
            args = header_args(legacy_on_headers[name])
            bi = instructions.per_request(lambda p: [bare, "--port", str(p), *args], header)
            si = instructions.per_request(
                instructions.sidecar_cmd(sidecar, CONFIG, upstream, "true", tokens), header,
                ready=True)
            rows.append(f"| {name} | {bi:.0f} | {si:.0f} | **{si / bi:.2f}** | {si - bi:.0f} |")
            print(rows[-1], flush=True)
        lines += rows
    if env("OUT", ""):
        with open(env("OUT", ""), "w") as f:
            f.write("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
