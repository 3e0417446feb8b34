#!/usr/bin/env python3
# per-thread CPU of the server's workers every 100 ms (diagnostic)
import os, sys, time
out = open(sys.argv[1], 'w')
def pid_of(name):
    for p in os.listdir('/proc'):
        if p.isdigit():
            try:
                if open(f'/proc/{p}/comm').read().strip() == name: return int(p)
            except OSError: pass
s=None
while s is None:
    s = pid_of('ringcast'); time.sleep(0.02)
time.sleep(0.5)
tids={}
for t in os.listdir(f'/proc/{s}/task'):
    c=open(f'/proc/{s}/task/{t}/comm').read().strip()
    if c.startswith('ringcast-w'): tids[c]=t
names=sorted(tids)
out.write('unix_ms '+' '.join(names)+' cpu_of_'+ ' cpu_of_'.join(names)+'\n')
def rd():
    r=[]
    for n in names:
        r.append(int(open(f'/proc/{s}/task/{tids[n]}/schedstat').read().split()[0]))
    return r
def cpus():
    r=[]
    for n in names:
        f=open(f'/proc/{s}/task/{tids[n]}/stat').read().rsplit(')',1)[1].split()
        r.append(f[36])  # processor (field 39)
    return r
prev=rd(); pt=time.time()
while True:
    time.sleep(0.1)
    try: cur=rd(); cp=cpus()
    except OSError: break
    t=time.time()
    out.write('%d %s %s\n'%(t*1000,' '.join('%.2f'%((c-p)/1e9/(t-pt)) for c,p in zip(cur,prev)),' '.join(cp)))
    out.flush(); prev=cur; pt=t
