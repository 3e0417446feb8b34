#!/usr/bin/env python3
"""One loadgen run's figures and its one-line summary, from the run directory's summary.json:
shared by ab.sh (which prints the line after each run) and vs_peers_table.py (which also tabulates
the figures).

usage: results/summary_line.py RUN_DIR    (prints the line, the directory's name first)
"""
import json
import os
import sys


def figures(scenario, path):
    """(figures by name, the printed line) of the run in `path` (a directory) of `scenario`."""
    d = json.load(open(os.path.join(path, "summary.json")))
    s, c = d["server"], d["counts"]
    fig = {}
    if scenario == "connect":
        n = max(c["connected"], 1)
        fig["cpu per connection µs"] = s["cpu_s"] * 1e6 / n
        line = (f'connected {c["connected"]:>6}  {fig["cpu per connection µs"]:6.0f} µs server CPU per connection '
                f'(user {s["user_s"] * 1e6 / n:4.0f})')
    elif scenario == "idle":
        fig["RSS per idle connection B"] = (s["rss_end_kib"] - s["rss_start_kib"]) * 1024 / max(c["connected"], 1)
        line = (f'connected {c["connected"]:>6}  RSS at the end {s["rss_end_kib"]:>6} KiB  '
                f'{fig["RSS per idle connection B"]:6.0f} B per connection (growth)')
        m = d.get("idle_marginal")
        if m:  # loadgen since 2026-12-03: from a tenth connected to all, one-time costs left out
            fig["RSS per idle connection B, marginal"] = m["bytes_per_connection"]
            line += f'  {m["bytes_per_connection"]:6.0f} B marginal (from {m["from_connected"]})'

    else:
        lat, lag = d["latency_us"], d["schedule_lag_us"]
        p99, behind = lat["p99"] / 1000, lag["p99"] / 1000
        fig["CPU per delivery µs"] = s["cpu_us_per_delivered"]
        fig["p99 ms"] = p99
        fig["lost"] = c["lost"]
        fig["loadgen limited"] = behind >= 0.1 * p99
        line = (f'delivered {c["delivered"]:>8} lost {c["lost"]}  {s["cpu_us_per_delivered"]:5.2f} µs/delivery '
                f'(user {s["user_us_per_delivered"]:4.2f})  p50 {lat["p50"] / 1000:6.1f} ms  p99 {p99:6.1f} ms  '
                f'behind plan p99 {behind:5.1f} ms')
        g = d.get("loadgen")
        if g:  # the kernel charges loopback's receive work to either side (results/cpu-accounting.md)
            both = s["cpu_us_per_delivered"] + g["cpu_us_per_delivered"]
            fig["CPU per delivery µs, server + loadgen"] = both
            line += f'  server + loadgen {both:5.2f} µs'

    return fig, line


if __name__ == "__main__":
    path = sys.argv[1].rstrip("/")
    name = os.path.basename(path)
    print(f"{name:<22} {figures(name.split('-')[0], path)[1]}")
