#!/usr/bin/env python3
"""Print criterion results (target/criterion/**/new/) as markdown tables with ratios.

usage: results/criterion_table.py GROUP BASELINE_FUNCTION [--only F1,F2,..] [--dir target/criterion]

One row per input size, one column per function: median time, and the speed-up against
BASELINE_FUNCTION measured in the same run (baseline time / function time).
"""
import argparse
import json
import os
import sys


def load(root, group):
    rows = {}
    gdir = os.path.join(root, group)
    for dirpath, _, files in os.walk(gdir):
        if "benchmark.json" in files and os.path.basename(dirpath) == "new":
            b = json.load(open(os.path.join(dirpath, "benchmark.json")))
            e = json.load(open(os.path.join(dirpath, "estimates.json")))
            size = b.get("value_str") or "-"
            rows.setdefault(size, {})[b["function_id"]] = e["median"]["point_estimate"]
    return rows


def fmt_ns(ns):
    if ns >= 1e6:
        return f"{ns / 1e6:.2f} ms"
    if ns >= 1e3:
        return f"{ns / 1e3:.2f} µs"
    return f"{ns:.1f} ns"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("group")
    ap.add_argument("baseline")
    ap.add_argument("--dir", default="target/criterion")
    ap.add_argument("--only", help="comma list of functions to show (baseline included)")
    a = ap.parse_args()
    rows = load(a.dir, a.group)
    if not rows:
        sys.exit(f"no results for group {a.group} under {a.dir}")
    only = set(a.only.split(",")) | {a.baseline} if a.only else None
    funcs = sorted({f for r in rows.values() for f in r}, key=lambda f: (f != a.baseline, f))
    funcs = [f for f in funcs if only is None or f in only]
    print("| size | " + " | ".join(funcs) + " |")
    print("|---" * (len(funcs) + 1) + "|")
    key = lambda s: (int(s) if s.isdigit() else 0, s)
    for size in sorted(rows, key=key):
        r = rows[size]
        base = r.get(a.baseline)
        cells = []
        for f in funcs:
            t = r.get(f)
            if t is None:
                cells.append("")
            elif base and f != a.baseline:
                cells.append(f"{fmt_ns(t)} (×{base / t:.1f})")
            else:
                cells.append(fmt_ns(t))
        print(f"| {size} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
