#!/usr/bin/env python3
"""slice.py PID SLICE_NS [COMM_PREFIX]: sets the EEVDF slice (sched_attr.sched_runtime, SCHED_OTHER)
of every thread of PID whose comm starts with COMM_PREFIX (default ringcast-w); prints before/after."""
import ctypes, os, struct, sys
libc = ctypes.CDLL(None, use_errno=True)
SETATTR, GETATTR = 314, 315
pid, slice_ns = int(sys.argv[1]), int(sys.argv[2])
prefix = sys.argv[3] if len(sys.argv) > 3 else "ringcast-w"
def get(tid):
    buf = ctypes.create_string_buffer(56)
    r = libc.syscall(GETATTR, tid, buf, 56, 0)
    if r != 0: raise OSError(ctypes.get_errno(), "getattr")
    return struct.unpack("IIQiIQQQII", buf.raw)
for tid in sorted(int(t) for t in os.listdir(f"/proc/{pid}/task")):
    comm = open(f"/proc/{pid}/task/{tid}/comm").read().strip()
    if not comm.startswith(prefix): continue
    before = get(tid)
    attr = struct.pack("IIQiIQQQII", 56, 0, 0, before[3], 0, slice_ns, 0, 0, 0, 0)
    buf = ctypes.create_string_buffer(attr, 56)
    r = libc.syscall(SETATTR, tid, buf, 0)
    if r != 0: print(tid, comm, "setattr failed", os.strerror(ctypes.get_errno())); continue
    print(tid, comm, "slice", before[5], "->", get(tid)[5], file=sys.stderr)
