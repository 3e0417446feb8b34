#!/usr/bin/env python3
"""Issue 14's table from a results/vs-peers.sh run: every run on one line, then per figure the
range over rounds for each server, its ratio to the best peer (same round) and to the kernel's
floor (same round).

usage: results/vs_peers_table.py DIR
"""
import os
import re
import sys
from collections import defaultdict

from summary_line import figures

out = sys.argv[1]
runs = defaultdict(dict)  # (scenario, round) -> server -> figures
floors = {}  # (kind, round) -> µs per send
floor_sums = {}  # (kind, round) -> the sending and the reading thread's µs per delivery together
for name in sorted(os.listdir(out)):
    path = os.path.join(out, name)
    m = re.fullmatch(r"floor-(1k|9k)-r(\d+)\.txt", name)
    if m:
        f = re.search(r"sender ([\d.]+) us/send", open(path).read())
        if f:
            floors[(m[1], int(m[2]))] = float(f[1])
        g = re.search(r"reader ([\d.]+) us/delivery", open(path).read())
        if f and g:
            floor_sums[(m[1], int(m[2]))] = float(f[1]) + float(g[1])
        continue
    m = re.fullmatch(r"(\w+)-(\w+)-r(\d+)", name)
    summary = os.path.join(path, "summary.json")
    if not m or not os.path.exists(summary):
        continue
    scenario, server, rnd = m[1], m[2], int(m[3])
    fig, line = figures(scenario, path)
    runs[(scenario, rnd)][server] = fig
    print(f"{name:<28} {line}")

for (kind, rnd), us in sorted(floors.items()):
    print(f"floor-{kind}-r{rnd:<21} {us:5.2f} µs per send")

FIGURES = [
    ("b1k", "CPU per delivery µs", "1k"),
    ("b1k", "CPU per delivery µs, server + loadgen", "1k+"),
    ("b1k", "p99 ms", None),
    ("b10k", "CPU per delivery µs", "9k"),
    ("b10k", "CPU per delivery µs, server + loadgen", "9k+"),
    ("b10k", "p99 ms", None),
    ("b10k100", "p99 ms", None),
    ("b10k100", "lost", None),
    ("idle", "RSS per idle connection B", None),
    ("idle", "RSS per idle connection B, marginal", None),
    ("connect", "cpu per connection µs", None),
]
servers = sorted({s for v in runs.values() for s in v}, key=lambda s: (s != "ringcast", s))
print()
print("| scenario | figure | " + " | ".join(servers) + " | ringcast ÷ best peer | ringcast ÷ floor |")
print("|---|---|" + "---|" * (len(servers) + 2))
for scenario, figure, floor_kind in FIGURES:
    # A figure older runs do not have (the marginal idle memory) is left out for them.
    rounds = sorted(r for (sc, r) in runs if sc == scenario and any(figure in f for f in runs[(sc, r)].values()))
    if not rounds:
        continue
    cells, vs_peer, vs_floor = [], [], []
    for s in servers:
        vals = [runs[(scenario, r)][s][figure] for r in rounds if figure in runs[(scenario, r)].get(s, {})]
        limited = any(runs[(scenario, r)][s].get("loadgen limited") for r in rounds if s in runs[(scenario, r)])
        mark = "*" if figure == "p99 ms" and limited else ""
        num = lambda v: f"{v:,.0f}" if v >= 100 else f"{v:.3g}"
        cells.append("–" if not vals else (f"{num(min(vals))}–{num(max(vals))}" if len(vals) > 1 else num(vals[0])) + mark)
    for r in rounds:
        row = runs[(scenario, r)]
        if figure not in row.get("ringcast", {}):
            continue
        peers = [v[figure] for k, v in row.items() if k != "ringcast" and figure in v]
        if peers and figure != "lost" and min(peers) > 0:
            vs_peer.append(row["ringcast"][figure] / min(peers))
        # "1k+": against the floor's sender and reader together (plain TCP both sides, where
        # loadgen also decrypts TLS: an upper bound of what the whole system adds).
        base = floor_sums if floor_kind and floor_kind.endswith("+") else floors
        key = (floor_kind.rstrip("+"), r) if floor_kind else None
        if key and key in base:
            vs_floor.append(row["ringcast"][figure] / base[key])
    fmt = lambda xs: "–" if not xs else ", ".join(f"{x:.2f}×" for x in xs)
    print(f"| {scenario} | {figure} | " + " | ".join(cells) + f" | {fmt(vs_peer)} | {fmt(vs_floor)} |")
print("\n(* loadgen's behind-plan p99 was ≥ 10 % of the latency p99 in a round: loadgen was a limit)")
print("(server + loadgen ÷ floor: against the floor's sending and reading threads together)")
