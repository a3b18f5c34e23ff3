#!/usr/bin/env python3
"""Where a request's CPU goes: user and kernel time and context switches per request, bare
against the sidecar (both built by `ratio.py`), in alternating 5 s wrk rounds.

env: LEGACY (default false), CASE (Basic, RS256 JWT, ECMWF key), C (connections, default 64),
     R (rounds, default 3), NOMETRICS (1: the sidecar with metrics off), SIDECAR and BARE
     (other binaries, e.g. `--profile release-lto` builds)
"""
import os, sys, re, subprocess
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common, ratio
target=os.environ.get("CARGO_TARGET_DIR", os.path.join(ratio.ROOT, "target"))
sidecar=os.environ.get("SIDECAR",os.path.join(target,"release","examples","sidecar"))
bare=os.environ.get("BARE",os.path.join(target,"release","examples","bare"))
legacy=os.environ.get("LEGACY","false"); case=os.environ.get("CASE","Basic"); conns=int(os.environ.get("C","64"))
up=common.Upstream(); cases=dict(up.cases()); header=cases[case]
sport,bport=common.free_port(),common.free_port()
cfg=os.path.join(common.scratch("aot-split-"),"config.yaml")
common.render_config(ratio.CONFIG,cfg,tokens=None,port=sport,mport=common.free_port(),upstream=up.port,legacy=legacy)
if os.environ.get("NOMETRICS"):
    t=open(cfg).read().replace("metrics: {enabled: true","metrics: {enabled: false"); open(cfg,"w").write(t)
side=common.start([sidecar,"--config",cfg],sport); common.wait_ready(sport)
args=ratio.header_args(ratio.decision_headers(sport,case,header))
bp=common.start([bare,"--port",str(bport),*args],bport)
def stat(pid):
    f=open(f"/proc/{pid}/stat").read().rsplit(")",1)[1].split()
    # context switches summed over the threads
    vol=inv=0
    for t in os.listdir(f"/proc/{pid}/task"):
        ts=open(f"/proc/{pid}/task/{t}/status").read()
        vol+=int(re.search(r"voluntary_ctxt_switches:\s+(\d+)",ts).group(1))
        inv+=int(re.search(r"nonvoluntary_ctxt_switches:\s+(\d+)",ts).group(1))
    return int(f[11]),int(f[12]),vol,inv
def run(port,pid):
    a=stat(pid)
    out=subprocess.run(["wrk",f"-t{min(2,conns)}",f"-c{conns}","-d5s","--latency","-H",f"Authorization: {header}","-H","X-Original-URI: /",f"http://127.0.0.1:{port}/authenticate"],capture_output=True,text=True).stdout
    b=stat(pid); n=int(re.search(r"(\d+) requests in",out).group(1))
    p99=re.search(r"^\s+99%\s+(\S+)",out,re.M).group(1); p50=re.search(r"^\s+50%\s+(\S+)",out,re.M).group(1)
    d=[(y-x) for x,y in zip(a,b)]
    return f"rps={n/5:.0f} p50={p50} p99={p99} user={d[0]*1e4/n:.2f}us sys={d[1]*1e4/n:.2f}us vcs/req={d[2]/n:.3f} ivcs/req={d[3]/n:.3f}"
try:
    for port,pid in ((bport,bp.pid),(sport,side.pid)): run(port,pid)
    for r in range(int(os.environ.get("R","3"))):
        print("bare   ",run(bport,bp.pid),flush=True)
        print("sidecar",run(sport,side.pid),flush=True)
finally:
    bp.terminate(); side.terminate(); bp.wait(); side.wait()
