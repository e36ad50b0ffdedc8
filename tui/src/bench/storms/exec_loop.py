# One of `bench --overhead --storm python`'s loops (the reference workload of BENCHMARKS.md: Python loops
# running /bin/true as fast as they can). Alternates `/bin/true ovh-T-N` and `/bin/false ovh-T-N`
# so that comm, exit status and command line can be checked per child. Prints the report
# format of storm_process.rs: `exec <pid> <spawned_ns> <exit> <comm> <cmdline>` per child, then
# `end <completed> <failed> <elapsed_ns>`. argv: T (loop number), duration in ms.
import subprocess, sys, time

t = int(sys.argv[1])
duration_s = int(sys.argv[2]) / 1000.0
lines = []
failed = 0
n = 0
started = time.monotonic_ns()
deadline = time.monotonic() + duration_s
while time.monotonic() < deadline:
    comm, status = ("true", 0) if n % 2 == 0 else ("false", 1)
    program, arg = "/bin/" + comm, "ovh-%d-%d" % (t, n)
    n += 1
    spawned_ns = time.monotonic_ns()
    try:
        child = subprocess.Popen([program, arg])
        child.wait()
    except OSError:
        failed += 1
        continue
    lines.append("exec %d %d %d %s %s %s" % (child.pid, spawned_ns, status, comm, program, arg))
lines.append("end %d %d %d" % (len(lines), failed, time.monotonic_ns() - started))
sys.stdout.write("\n".join(lines) + "\n")
