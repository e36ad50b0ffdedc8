#!/usr/bin/env python3
"""Key press -> changed screen latency of the dashboard under a storm (BENCHMARKS.md, section 9).

Runs the dashboard in a private tmux server (200x50), starts a storm beside it (by default a
paced loopback connect storm, ~10k changes/s), then presses Tab N times at random moments and
times each press until `tmux capture-pane` shows the other table. The figure includes tmux's own
delivery and one capture-pane (a few ms): it is an upper bound of the dashboard's own latency.

usage: sudo scripts/key_latency.py BIN [presses] [storm args...]
"""
import random, re, subprocess, sys, time

BIN = sys.argv[1]
PRESSES = int(sys.argv[2]) if len(sys.argv) > 2 else 60
STORM = sys.argv[3:] or ["--workload", "connect", "--rate", "1000", "--procfs", "false", "--modes", "poll"]
SOCK = "bpftop-keylat"

def tmux(*args, check=True):
    return subprocess.run(["tmux", "-L", SOCK, "-f", "/dev/null", *args], capture_output=True, text=True, check=check).stdout

def screen():
    return tmux("capture-pane", "-p", "-t", "k")

def wait_for(pred, timeout=60.0):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        s = screen()
        if pred(s):
            return s
        time.sleep(0.001)
    raise SystemExit("timed out; screen:\n" + screen())

def connections(s):  # the connections table's column titles are showing
    return "LOCAL" in s and "REMOTE" in s

tmux("kill-server", check=False)
tmux("new-session", "-d", "-s", "k", "-x", "200", "-y", "50", f"{BIN}")
try:
    wait_for(lambda s: "bpftop-ordered" in s and "PPID" in s)
    storm = subprocess.Popen([BIN, "bench", "--duration", "600s", *STORM], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(5)  # let the storm reach its rate
    lat, rates = [], []
    for _ in range(PRESSES):
        time.sleep(random.uniform(0.2, 0.6))
        was = connections(screen())
        t0 = time.monotonic()
        tmux("send-keys", "-t", "k", "Tab")
        s = wait_for(lambda s: connections(s) != was, timeout=30)
        lat.append((time.monotonic() - t0) * 1000)
        m = re.search(r"ev/s\s+(\S+)", s)
        if m:
            rates.append(m.group(1))
        if storm.poll() is not None:
            raise SystemExit("the storm ended early")
    storm.terminate(); storm.wait()
    lat.sort()
    pct = lambda p: lat[min(len(lat) - 1, int(round(p / 100 * (len(lat) - 1))))]
    print(f"presses {len(lat)}  p50 {pct(50):.1f} ms  p90 {pct(90):.1f} ms  p99 {pct(99):.1f} ms  max {lat[-1]:.1f} ms")
    print("header ev/s while pressing (visible mode):", " ".join(rates[::max(1, len(rates)//10)]))
    s = screen()
    print("BEHIND badge on the last screen:", "BEHIND" in s)
finally:
    tmux("kill-server", check=False)
