#!/usr/bin/env python3
"""Instructions per decision of sidecar binaries, counted by valgrind's callgrind.

Each binary runs as its own process under callgrind on the same config; a keep-alive client
sends N1, then (in a second run) N2 identical cache-hit requests to /authenticate, and the
difference of the two totals divided by N2 - N1 is the cost of one decision without startup.
Instruction counts do not move with the machine's noise, unlike req/s.

usage: benches/proc/instructions.py CONFIG LABEL=BINARY [LABEL=BINARY ...]
  env: N1 (default 200), N2 (default 1200), AOT_HEADER (default Basic alice:alicepass),
       AOT_URI (X-Original-URI sent, default /)
"""
import base64, http.client, os, re, socket, subprocess, sys, tempfile, time

def free_port():
    s = socket.socket(); s.bind(("127.0.0.1", 0)); p = s.getsockname()[1]; s.close(); return p

def run(binary, config, n):
    port, mport = free_port(), free_port()
    tmp = tempfile.mkdtemp(prefix="aot-instr-")
    cfg = os.path.join(tmp, "config.yaml")
    with open(config) as f:
        text = f.read().replace("{port}", str(port)).replace("{mport}", str(mport))
    with open(cfg, "w") as f:
        f.write(text)
    out = os.path.join(tmp, "callgrind.out")
    proc = subprocess.Popen(["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}",
                             binary, "--config", cfg],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.time() + 120
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close(); break
            except OSError:
                if time.time() > deadline: raise SystemExit(f"{binary} did not start")
                time.sleep(0.2)
        header = os.environ.get("AOT_HEADER") or "Basic " + base64.b64encode(b"alice:alicepass").decode()
        uri = os.environ.get("AOT_URI", "/")
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        for _ in range(n):
            c.request("GET", "/authenticate", headers={"Authorization": header, "X-Original-URI": uri})
            r = c.getresponse(); r.read()
            if r.status != 200: raise SystemExit(f"{binary}: status {r.status}")
        c.close()
    finally:
        proc.terminate(); proc.wait(timeout=120)
    total = None
    with open(out) as f:
        for line in f:
            m = re.match(r"(?:summary|totals): (\d+)", line)
            if m: total = int(m.group(1))
    subprocess.run(["rm", "-rf", tmp])
    return total

def main():
    if len(sys.argv) < 3: raise SystemExit(__doc__)
    config = sys.argv[1]
    n1, n2 = int(os.environ.get("N1", 200)), int(os.environ.get("N2", 1200))
    rows = []
    for arg in sys.argv[2:]:
        label, binary = arg.split("=", 1)
        a, b = run(binary, config, n1), run(binary, config, n2)
        rows.append((label, (b - a) / (n2 - n1)))
        print(f"{label}: {rows[-1][1]:.0f} instructions per decision ({n1} vs {n2} requests)", flush=True)
    base = rows[0][1]
    print("\n| binary | instructions / decision | ratio to first |\n|---|---|---|")
    for label, ipr in rows:
        print(f"| {label} | {ipr:.0f} | {ipr / base:.2f} |")

if __name__ == "__main__":
    main()
