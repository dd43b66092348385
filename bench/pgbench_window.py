#!/usr/bin/env python3
"""Runs pgbench with per-second progress and measures CPU over its steady middle.

    pgbench_window.py PROXY_PID -- PGBENCH_ARGS...

pgbench's own report goes to stdout unchanged; a last line adds

    window: TX MACHINE_US IDLE_PCT PGBENCH_US PROXY_US

for the progress intervals after the first and before the last (logins of pgbench's clients and
the ramp at either end fall outside): the transactions in that window, and per transaction the
CPU of the whole machine, of pgbench, and of the proxy process (PROXY_PID, or 0 for none), plus
the share of the machine left idle. On a machine where the load generator, the database and the
proxy share the cores, these decide what any proxy could reach: a proxy that cost nothing would
still leave MACHINE_US - PROXY_US per transaction.
"""

import os
import re
import subprocess
import sys

TCK = os.sysconf("SC_CLK_TCK")
PROGRESS = re.compile(r"^progress: [0-9.]+ s, ([0-9.]+) tps")


def machine_ticks():
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:]]
    # user nice system idle iowait irq softirq steal
    return v[0] + v[1] + v[2] + v[5] + v[6] + v[7], v[3] + v[4]


def process_ticks(pid):
    if pid <= 0:
        return 0
    try:
        with open(f"/proc/{pid}/stat") as f:
            # The command name may hold spaces; fields after it are fixed.
            rest = f.read().rsplit(")", 1)[1].split()
        return int(rest[11]) + int(rest[12])  # utime + stime, over all threads
    except (OSError, IndexError, ValueError):
        return 0


def sample(proxy_pid, pgbench_pid):
    busy, idle = machine_ticks()
    return busy, idle, process_ticks(pgbench_pid), process_ticks(proxy_pid)


def main():
    if len(sys.argv) < 3 or sys.argv[2] != "--":
        sys.exit("usage: pgbench_window.py PROXY_PID -- PGBENCH_ARGS...")
    proxy_pid = int(sys.argv[1])
    proc = subprocess.Popen(
        ["pgbench", "-P", "1", *sys.argv[3:]],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    samples = []  # (tps of the interval just ended, sample taken as it was printed)
    for line in proc.stderr:
        m = PROGRESS.match(line)
        if m:
            samples.append((float(m.group(1)), sample(proxy_pid, proc.pid)))
        else:
            sys.stderr.write(line)
    out = proc.stdout.read()
    code = proc.wait()
    sys.stdout.write(out)
    if len(samples) >= 3:
        first, last = samples[0][1], samples[-2][1]
        tx = sum(tps for tps, _ in samples[1:-1])
        busy, idle = last[0] - first[0], last[1] - first[1]
        if tx > 0 and busy + idle > 0:
            per_tx = lambda ticks: round(ticks * 1e6 / TCK / tx, 2)  # noqa: E731
            print(
                f"window: {round(tx)} {per_tx(busy)} {round(100 * idle / (busy + idle), 1)} "
                f"{per_tx(last[2] - first[2])} {per_tx(last[3] - first[3]) if proxy_pid > 0 else '-'}"
            )
    sys.exit(code)


if __name__ == "__main__":
    main()
