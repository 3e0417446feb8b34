#!/usr/bin/env python3
"""Lines a run's latency timeline up with cpu-share.py's samples.

usage: results/saturated-tail/share_by_step.py RUN_DIR CPU_SHARE_TXT
RUN_DIR: loadgen's --out (summary.json with latency_by_step_us and measured_from_unix_ms).
Prints each step's p50/p99 with the server's and loadgen's cores in that step, then the mean
shares in "episode" steps (p99 > 150 ms) against calm ones (p99 < 120 ms), for the samples of
the same step and of the one or two after it (a message planned in a step is sent up to a cycle
later).
"""
import json
import os
import sys

run, samples = sys.argv[1], sys.argv[2]
j = json.load(open(os.path.join(run, "summary.json")))
m0, steps = j["measured_from_unix_ms"], j["latency_by_step_us"]
step_ms = round(j["params"]["timeline_step_s"] * 1000)
rows = [l.split() for l in open(samples).read().splitlines()[1:] if l.strip()]


def share(a, col):
    # samples whose 100-ms window is centred in [a, a + step)
    sel = [float(r[col]) for r in rows if a <= int(r[1]) - 50 < a + step_ms]
    return sum(sel) / len(sel) if sel else None


for i, s in enumerate(steps):
    sv, lv = share(m0 + i * step_ms, 2), share(m0 + i * step_ms, 3)
    cores = f"server {sv:.2f} loadgen {lv:.2f}" if sv is not None else "(no sample)"
    print(f"{i:3d}  p50 {s['p50'] / 1000:6.1f}  p99 {s['p99'] / 1000:6.1f} ms  {cores}")
for lag in (0, 1, 2):
    groups = {"episode": [], "calm": []}
    for i, s in enumerate(steps):
        a = m0 + (i + lag) * step_ms
        sv, lv = share(a, 2), share(a, 3)
        p99 = s["p99"] / 1000
        g = "episode" if p99 > 150 else "calm" if p99 < 120 else None
        if sv is not None and g:
            groups[g].append((sv, lv))
    line = [f"lag {lag} step(s):"]
    for g, v in groups.items():
        if v:
            line.append(
                f"{g} {len(v)} steps: server {sum(x for x, _ in v) / len(v):.3f}, "
                f"loadgen {sum(y for _, y in v) / len(v):.3f} cores"
            )
    print("  ".join(line))
