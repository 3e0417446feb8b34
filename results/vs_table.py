#!/usr/bin/env python3
"""Turns the output of vs-tungstenite.sh into the markdown table of loadgen-vs-tungstenite.md.

    results/vs-tungstenite.sh > vs.out 2>/dev/null; results/vs_table.py vs.out [SECONDS]

SECONDS (default 12) is the sending window, used only for the "cores busy" column:
(client CPU + server CPU) / SECONDS — near 2.0 the 2-core machine is saturated and CPU per
message is then mostly each process's share of the machine, not its cost.
"""
import re
import sys

HEAD = re.compile(r"## (\d+) clients, 10 senders, (\d+) msg/s total, round (\d+)")
BASE_CPU = re.compile(
    r"client CPU ([\d.]+) s = ([\d.]+) µs per delivered message: ([\d.]+) user space"
)
BASE_SERVER = re.compile(r"baseline: server CPU ([\d.]+) s")
BASE_LAT = re.compile(r"baseline: latency p50 ([\d.]+) ms\s+p99 ([\d.]+) ms")
LG_CPU = re.compile(r"loadgen CPU\s+([\d.]+) s \(([\d.]+) µs per delivered message: ([\d.]+) user")
LG_SERVER = re.compile(r"^server\s+CPU ([\d.]+) s")
LG_LAT = re.compile(r"^latency\s+p50 (\S+ \S+)\s.*?p99 (\S+ \S+)")
DELIVERED = re.compile(r"delivered (\d+)")
SEGS = re.compile(r"(tungstenite|loadgen) run: (\d+) TCP segments")


def ms(text):
    value, unit = text.split()
    return float(value) / 1000 if unit == "µs" else float(value)


def main():
    path = sys.argv[1]
    secs = float(sys.argv[2]) if len(sys.argv) > 2 else 12.0
    rows, cur = [], None
    for line in open(path, encoding="utf-8"):
        line = line.rstrip("\n")
        if m := HEAD.match(line):
            cur = {"clients": int(m[1]), "rate": int(m[2]), "round": int(m[3])}
            rows.append(cur)
        elif cur is None:
            continue
        elif m := BASE_CPU.search(line):
            cur["t_cpu"], cur["t_us"], cur["t_user"] = float(m[1]), float(m[2]), float(m[3])
            cur["t_deliv"] = int(DELIVERED.search(line)[1])
        elif m := BASE_SERVER.search(line):
            cur["t_srv"] = float(m[1])
        elif m := BASE_LAT.search(line):
            cur["t_p50"], cur["t_p99"] = float(m[1]), float(m[2])
        elif m := LG_CPU.search(line):
            cur["l_cpu"], cur["l_us"], cur["l_user"] = float(m[1]), float(m[2]), float(m[3])
        elif line.startswith("messages"):
            cur["l_deliv"] = int(DELIVERED.search(line)[1])
        elif m := LG_SERVER.search(line):
            cur["l_srv"] = float(m[1])
        elif m := LG_LAT.search(line):
            cur["l_p50"], cur["l_p99"] = ms(m[1]), ms(m[2])
        elif m := SEGS.search(line):
            cur["t_segs" if m[1] == "tungstenite" else "l_segs"] = int(m[2])
    print(
        "| load | round | tungstenite µs/msg (user) | loadgen µs/msg (user) | **ratio** | "
        "user-space ratio | p50 / p99 ms tungstenite | p50 / p99 ms loadgen | "
        "segments per delivery t / l | cores busy t / l |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        if "l_us" not in r or "t_us" not in r:
            continue
        load = f"{r['clients']:,} × {r['rate']}/s = {r['clients'] * r['rate'] // 1000}k/s"
        # Each segment is counted twice (OutSegs at one end, InSegs at the other).
        t_seg = r["t_segs"] / 2 / r["t_deliv"]
        l_seg = r["l_segs"] / 2 / r["l_deliv"]
        print(
            f"| {load} | {r['round']} | {r['t_us']:.2f} ({r['t_user']:.2f}) | "
            f"{r['l_us']:.2f} ({r['l_user']:.2f}) | **{r['t_us'] / r['l_us']:.2f}×** | "
            f"{r['t_user'] / max(r['l_user'], 0.01):.2f}× | "
            f"{r['t_p50']:.1f} / {r['t_p99']:.1f} | {r['l_p50']:.1f} / {r['l_p99']:.1f} | "
            f"{t_seg:.2f} / {l_seg:.2f} | "
            f"{(r['t_cpu'] + r['t_srv']) / secs:.2f} / {(r['l_cpu'] + r['l_srv']) / secs:.2f} |"
        )


if __name__ == "__main__":
    main()
