#!/usr/bin/env python3
# Samples the CPU of the running server (process name ringcast) and loadgen every 100 ms, in
# cores: results/saturated-tail/cpu-share.py OUT, started before the run (it waits for both).
import os, sys, time
out = open(sys.argv[1], 'w')
def pid_of(name):
    for p in os.listdir('/proc'):
        if p.isdigit():
            try:
                if open(f'/proc/{p}/comm').read().strip() == name: return int(p)
            except OSError: pass
def cpu(pid):
    # Time on a CPU in seconds, summed over the threads (schedstat: ns, not 10-ms ticks).
    total = 0
    for t in os.listdir(f'/proc/{pid}/task'):
        try:
            total += int(open(f'/proc/{pid}/task/{t}/schedstat').read().split()[0])
        except OSError:
            pass
    return total / 1e9
s = l = None
while s is None or l is None:
    s = s or pid_of('ringcast'); l = l or pid_of('loadgen'); time.sleep(0.02)
out.write('t unix_ms server_cores loadgen_cores\n')
t0 = time.time(); ps, pl, pt = cpu(s), cpu(l), t0
while True:
    time.sleep(0.1)
    try:
        cs, cl = cpu(s), cpu(l)
    except OSError:
        break
    t = time.time()
    out.write('%.2f %d %.2f %.2f\n' % (t - t0, t * 1000, (cs - ps) / (t - pt), (cl - pl) / (t - pt)))
    out.flush(); ps, pl, pt = cs, cl, t
