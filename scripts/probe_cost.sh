#!/bin/bash
# Per probe program: runs/s, average ns per run, CPU% of one CPU over an 8 s storm, from the
# kernel's bpf_stats (BENCHMARKS.md, section 8d).
# usage: sudo scripts/probe_cost.sh BIN exec|connect [dump args...]
BIN=$1; WORKLOAD=$2; shift 2
HERE=$(dirname "$0")
mkdir -p /tmp/cost
sysctl -q kernel.bpf_stats_enabled=1
MAXID=$(bpftool prog show --json | python3 -c 'import json,sys; print(max([p["id"] for p in json.load(sys.stdin)]+[0]))')
$BIN dump --duration 14s --table processes --format json "$@" > /dev/null 2>/tmp/cost/dump.err &
DP=$!
sleep 3
snap() { bpftool prog show --json | python3 -c '
import json,sys
for p in json.load(sys.stdin):
    if p["id"] > '$MAXID' and p.get("type") in ("raw_tracepoint","tracing"):
        print(p["id"], p.get("name"), p.get("run_cnt",0), p.get("run_time_ns",0))
'; }
snap > /tmp/cost/s1; T1=$(date +%s%N)
if [ "$WORKLOAD" = connect ]; then
  python3 "$HERE/connect_storm.py" 8
else
  for l in 1 2; do ( end=$((SECONDS+8)); while [ $SECONDS -lt $end ]; do /bin/true; done ) & done; wait %2 %3 2>/dev/null; sleep 0.1
fi
snap > /tmp/cost/s2; T2=$(date +%s%N)
wait $DP
sysctl -q kernel.bpf_stats_enabled=0
python3 - "$T1" "$T2" <<'PY'
import sys
t1,t2=int(sys.argv[1]),int(sys.argv[2]); wall=(t2-t1)
a={l.split()[0]:l.split() for l in open('/tmp/cost/s1')}
tot=0
for l in open('/tmp/cost/s2'):
    i,n,c,t=l.split(); 
    if i not in a: continue
    dc=int(c)-int(a[i][2]); dt=int(t)-int(a[i][3]); tot+=dt
    print(f"{n:18} runs/s {dc/wall*1e9:10.0f} avg_ns {dt/max(dc,1):7.0f} cpu% {dt/wall*100:6.2f}")
print(f"{'all':18} cpu% {tot/wall*100:6.2f}  (of one CPU, wall {wall/1e9:.1f}s)")
PY
