#!/usr/bin/env python3
"""Per-function costs of one request, bare against the sidecar, from the profiles `cachesim.py`
keeps (`KEEP=DIR`): for each function, (its cost over 1 200 requests minus its cost over 200)
divided by 1 000, so startup cancels out; rows sorted by the largest difference in one event.

usage: benches/proc/profdiff.py DIR [EVENT]   (EVENT: Ir, I1mr, D1mr or Bcm; default Bcm)
Rows are exclusive costs (`callgrind_annotate` without --inclusive), top 40, one per
function and object file (the table shows the function's name only).
"""
import collections, re, signal, subprocess, sys

EVENTS = ["Ir", "I1mr", "D1mr", "Bcm"]
NUM = r"([\d,]+|\.)(?:\s*\([^)]*\))?"  # callgrind_annotate prints 0 as "."
ROW = re.compile(r"^\s*" + r"\s+".join([NUM] * len(EVENTS)) + r"\s+(\S.*)$")


def costs(path):
    out = subprocess.run(["callgrind_annotate", f"--show={','.join(EVENTS)}", "--threshold=100",
                          path], capture_output=True, text=True, check=True).stdout
    per = collections.defaultdict(lambda: [0] * len(EVENTS))
    for line in out.splitlines():
        m = ROW.match(line)
        if not m or "PROGRAM TOTALS" in line:
            continue
        # file:function [object], whole (no two functions merge), but with the two binaries'
        # paths made one, so that a function both run is one row
        name = re.sub(r"\[[^\]]*/(bare|sidecar)\]$", "[binary]", m.group(len(EVENTS) + 1))
        for i in range(len(EVENTS)):
            per[name][i] += int(m.group(i + 1).replace(",", "").replace(".", "0"))
    return per


def one_request(d, label):
    a, b = costs(f"{d}/{label}.200"), costs(f"{d}/{label}.1200")
    return {k: [(b[k][i] - a[k][i]) / 1000 for i in range(len(EVENTS))] for k in set(a) | set(b)}


def main():
    signal.signal(signal.SIGPIPE, signal.SIG_DFL)  # `| head` ends the output quietly
    d = sys.argv[1]
    col = EVENTS.index(sys.argv[2] if len(sys.argv) > 2 else "Bcm")
    bare, side = one_request(d, "bare"), one_request(d, "sidecar")
    zero = [0.0] * len(EVENTS)
    names = sorted(set(bare) | set(side),
                   key=lambda k: -abs(side.get(k, zero)[col] - bare.get(k, zero)[col]))
    print("| function | " + " | ".join(f"{e} bare → sidecar" for e in EVENTS) + " |")
    print("|---|" + "---|" * len(EVENTS))
    for k in names[:40]:
        b, s = bare.get(k, zero), side.get(k, zero)
        short = re.sub(r"\s*\[.*\]$", "", k).split(":", 1)[-1]
        print(f"| `{short}` | " + " | ".join(f"{b[i]:.0f} → {s[i]:.0f}" for i in range(len(EVENTS))) + " |")


if __name__ == "__main__":
    main()
