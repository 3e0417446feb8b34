#!/usr/bin/env python3
"""Lines worker-share.py's samples up with a run's 100-ms latency timeline: usage worker_share_by_step.py DIR (DIR/run = loadgen --out with --timeline-step 100ms, DIR/w.txt = worker-share.py output)."""
import json,sys
D=sys.argv[1]
s=json.load(open(f'{D}/run/summary.json')); t0=s['measured_from_unix_ms']; st=s['latency_by_step_us']
rows=[l.split() for l in open(f'{D}/w.txt').read().splitlines()[1:]]
per={}
for r in rows:
    i=int((int(r[0])-50-t0)//100); per[i]=(float(r[1]),float(r[2]),r[3],r[4])
p99s=sorted(x['p99'] for x in st); med=p99s[len(p99s)//2]
E=[];C=[]
for i,x in enumerate(st):
    w=[per.get(j) for j in (i,i+1)]
    if None in w: continue
    w0=sum(a[0] for a in w)/2; w1=sum(a[1] for a in w)/2
    same=sum(1 for a in w if a[2]==a[3])
    tag='EPI' if x['p99']>1.3*med else ''
    print(f"{i:3d} p50 {x['p50']/1000:6.1f} p99 {x['p99']/1000:6.1f}  w0 {w0:.2f} w1 {w1:.2f} min {min(w0,w1):.2f} samecpu {same} cpus {per[i][2]}{per[i][3]} {tag}")
    (E if tag else C).append((min(w0,w1),w0+w1,same))
import statistics as S
for n,L in (('episode',E),('calm',C)):
    if L: print(n, len(L), 'min worker %.3f'%S.mean(a[0] for a in L), 'sum %.3f'%S.mean(a[1] for a in L), 'same-cpu samples %.2f'%S.mean(a[2] for a in L))
