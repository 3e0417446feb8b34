# The server's own backlog from backlog.sh's samples ("messages_in bytes_out" per line): bytes
# per message from the whole run, then publications read minus messages sent, past the first fifth.
import sys
rows=[tuple(map(int,l.split())) for l in open(sys.argv[1]) if l.strip()]
rows=[r for r in rows if r[0]>0]
m0,b0=rows[0]; m1,b1=max(rows)
bpm=(b1-b0)/(m1-m0)
bl=[m-m0-(b-b0)/bpm for m,b in rows if m<m1]
mid=bl[len(bl)//5:]
print(f"bytes per message {bpm:.0f}; server backlog (messages) mean {sum(mid)/len(mid):.1f} max {max(mid):.1f} over {len(mid)} samples")
