#!/usr/bin/env python3
"""split.py DIR...: per run the server's, loadgen's and their summed CPU per delivered message
(µs), then per scenario and build the medians — to see where the kernel charged the work.
"""
import json, os, statistics, sys
from collections import defaultdict
groups = defaultdict(list)
for d in sys.argv[1:]:
    for name in sorted(os.listdir(d)):
        p = os.path.join(d, name, "summary.json")
        if not os.path.exists(p):
            continue
        j = json.load(open(p))
        s, g = j["server"]["cpu_us_per_delivered"], j["loadgen"]["cpu_us_per_delivered"]
        su, gu = j["server"]["user_us_per_delivered"], j["loadgen"]["user_us_per_delivered"]
        print(f"{name:<22} server {s:5.2f} (user {su:4.2f})  loadgen {g:5.2f} (user {gu:4.2f})  sum {s + g:5.2f}"
              f"  p99 {j['latency_us']['p99'] / 1000:6.1f} ms")
        groups[name.rsplit("-", 1)[0]].append((s, g, s + g))
print("\n| scenario-build | runs | server µs | loadgen µs | sum µs |\n|---|---|---|---|---|")
for k, v in sorted(groups.items()):
    med = [statistics.median(x[i] for x in v) for i in range(3)]
    print(f"| {k} | {len(v)} | {med[0]:.2f} | {med[1]:.2f} | {med[2]:.2f} |")
