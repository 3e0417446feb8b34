#!/usr/bin/env python3
"""sched_by_step.py DIR (from sched-trace.sh). Per 100-ms step of a sched_switch trace: each worker's CPU share, the CPU it mostly ran on,
the busiest other thread on that CPU and its share, the worker's yields (switch-outs in R);
beside loadgen's latency p99 of the messages planned in that step (and the next)."""
import gzip, json, os, re, sys
from collections import defaultdict
d = sys.argv[1]
off = float(open(f"{d}/mono-offset.txt").read())
run = json.load(open(f"{d}/run/summary.json"))
t0 = run["measured_from_unix_ms"] / 1000.0
steps = run["latency_by_step_us"]
STEP = 0.1
ev = re.compile(r"\[(\d+)\]\s+([\d.]+): sched:sched_switch: prev_comm=(\S+) prev_pid=(\d+) .*prev_state=(\S+) ==> next_comm=(\S+) next_pid=(\d+)")
run_t = defaultdict(float)  # (step, comm, cpu) -> seconds
yields = defaultdict(int)   # (step, comm) -> R switch-outs
cur = {}                    # cpu -> (comm, since)
first = last = None
sw = f"{d}/sw.txt"
for line in (open(sw) if os.path.exists(sw) else gzip.open(sw + ".gz", "rt")):
    m = ev.search(line)
    if not m: continue
    cpu, ts = int(m[1]), float(m[2]) + off
    first = first if first is not None else ts
    last = ts
    if cpu in cur:
        comm, since = cur[cpu]
        a = round((since - t0) * 1e6)  # µs from t0, integers: no float creep
        e = round((ts - t0) * 1e6)
        while a < e:  # split across steps
            k = a // 100_000
            b = min(e, (k + 1) * 100_000)
            run_t[(k, comm, cpu)] += (b - a) / 1e6
            a = b
    if m[5].startswith("R") and m[5] != "R+":
        yields[(int((ts - t0) // STEP), m[3])] += 1
    cur[cpu] = (re.sub(r"-\d+$", "", m[6]) if not m[6].startswith(("ringcast-w", "loadgen-w")) else m[6], ts)
ks = sorted({k for (k, _, _) in run_t if t0 + k * STEP >= first and t0 + (k + 1) * STEP <= last})
rows = []
for k in ks:
    shares = defaultdict(float); oncpu = defaultdict(lambda: defaultdict(float))
    for (kk, comm, cpu), s in run_t.items():
        if kk == k:
            shares[comm] += s / STEP; oncpu[cpu][comm] += s / STEP
    ws = {w: shares.get(w, 0) for w in ("ringcast-w0", "ringcast-w1")}
    slow = min(ws, key=ws.get)
    cpu = max(oncpu, key=lambda c: oncpu[c].get(slow, 0))
    others = sorted(((s, c) for c, s in oncpu[cpu].items() if c != slow), reverse=True)
    fast = max(ws, key=ws.get)
    fcpu = max(oncpu, key=lambda c: oncpu[c].get(fast, 0))
    fothers = sorted(((s, c) for c, s in oncpu[fcpu].items() if c != fast), reverse=True)
    p99 = [steps[j]["p99"] / 1000 if 0 <= j < len(steps) else float("nan") for j in (k, k + 1)]
    rows.append((k, ws[slow], slow, cpu, others[:2], yields[(k, slow)], ws[fast], fcpu, fothers[:2], yields[(k, fast)], p99))
for r in rows:
    k, ss, slow, cpu, oth, y, fs, fcpu, foth, fy, p99 = r
    fmt = lambda o: ", ".join(f"{c} {s:.2f}" for s, c in o)
    print(f"step {k:3d} p99 {p99[0]:6.1f}/{p99[1]:6.1f} ms | slower {slow[-2:]} {ss:.2f} on cpu{cpu} beside [{fmt(oth)}] yields {y:4d} | faster {fs:.2f} on cpu{fcpu} beside [{fmt(foth)}] yields {fy:4d}")
# summary: steps where the slower worker < 0.38 vs >= 0.42
lo = [r for r in rows if r[1] < 0.38]; hi = [r for r in rows if r[1] >= 0.42]
def avg(xs): return sum(xs) / len(xs) if xs else float("nan")
for name, g in (("slower < 0.38", lo), ("slower >= 0.42", hi)):
    print(f"{name}: {len(g)} steps; busiest other thread on its CPU {avg([r[4][0][0] if r[4] else 0 for r in g]):.2f}; "
          f"its yields {avg([r[5] for r in g]):.0f} vs the faster worker's {avg([r[9] for r in g]):.0f}; "
          f"busiest other on the faster's CPU {avg([r[8][0][0] if r[8] else 0 for r in g]):.2f}; p99 of the step {avg([r[10][0] for r in g]):.0f} ms, next {avg([r[10][1] for r in g]):.0f} ms")
