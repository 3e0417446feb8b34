#!/usr/bin/env python3
"""yield-share.py MODE WORK_US SECS [SLICE_NS]: the share of a CPU a thread gets beside a spinning
one on the same CPU, when it works WORK_US of CPU time between sched_yield calls.

  MODE  yield: work WORK_US, then sched_yield; work: the same without the yield; spin: busy loop
  SLICE_NS  if given, the thread's EEVDF slice (sched_attr.sched_runtime, SCHED_OTHER)

Run two on one CPU, e.g.:
  taskset -c 1 yield-share.py yield 450 4 & taskset -c 1 yield-share.py spin 0 4; wait
"""
import ctypes
import os
import struct
import sys
import time

mode, work_us, secs = sys.argv[1], float(sys.argv[2]), float(sys.argv[3])
if len(sys.argv) > 4:
    libc = ctypes.CDLL(None, use_errno=True)
    attr = struct.pack("IIQiIQQQII", 56, 0, 0, 0, 0, int(sys.argv[4]), 0, 0, 0, 0)
    if libc.syscall(314, 0, ctypes.create_string_buffer(attr, 56), 0) != 0:  # sched_setattr
        sys.exit(f"sched_setattr: {os.strerror(ctypes.get_errno())}")
end = time.time() + secs
c0 = time.thread_time()
while time.time() < end:
    if mode == "spin":
        continue
    t = time.thread_time() + work_us / 1e6
    while time.thread_time() < t:
        pass
    if mode == "yield":
        os.sched_yield()
slice_note = f" slice {sys.argv[4]} ns" if len(sys.argv) > 4 else ""
print(f"{mode} {work_us:.0f} µs{slice_note}: share {(time.thread_time() - c0) / secs:.3f}")
