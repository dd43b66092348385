#!/usr/bin/env python3
"""Runs sysbench with per-second reports and measures CPU over its steady middle.

    sysbench_window.py PROXY_PID DB_PID -- SYSBENCH_ARGS...

The sibling of pgbench_window.py for sysbench. sysbench's report goes to stdout unchanged; a
last line adds

    window: TX MACHINE_US IDLE_PCT SYSBENCH_US PROXY_US DB_US

for the report intervals after the first and before the last (the logins of sysbench's threads
and the ramp at either end fall outside): the transactions in that window and, per transaction,
the CPU of the whole machine, of sysbench, of the proxy (PROXY_PID, 0 for none) and of the
database server (DB_PID), plus the share of the machine left idle.
"""

import os
import re
import signal
import subprocess
import sys

TCK = os.sysconf("SC_CLK_TCK")
REPORT = re.compile(r"^\[ *([0-9.]+)s \] thds: [0-9]+ tps: ([0-9.]+)")


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
            rest = f.read().rsplit(")", 1)[1].split()
        return int(rest[11]) + int(rest[12])  # utime + stime, over all threads
    except (OSError, IndexError, ValueError):
        return 0


def read_reports(proc, samples, proxy_pid, db_pid):
    for line in proc.stdout:
        sys.stdout.write(line)
        m = REPORT.match(line)
        if m:
            busy, idle = machine_ticks()
            samples.append(
                (float(m.group(2)),
                 (busy, idle, process_ticks(proc.pid), process_ticks(proxy_pid),
                  process_ticks(db_pid)))
            )


def main():
    if len(sys.argv) < 4 or sys.argv[3] != "--":
        sys.exit("usage: sysbench_window.py PROXY_PID DB_PID -- SYSBENCH_ARGS...")
    proxy_pid, db_pid = int(sys.argv[1]), int(sys.argv[2])
    proc = subprocess.Popen(
        ["sysbench", *sys.argv[4:]], stdout=subprocess.PIPE, text=True, bufsize=1
    )
    samples = []  # (tps of the interval just ended, sample taken as it was printed)
    try:
        read_reports(proc, samples, proxy_pid, db_pid)
    except KeyboardInterrupt:
        proc.kill()
        proc.wait()
        raise
    code = proc.wait()
    if len(samples) >= 3:
        first, last = samples[0][1], samples[-2][1]
        tx = sum(tps for tps, _ in samples[1:-1])
        busy, idle = last[0] - first[0], last[1] - first[1]
        if tx > 0 and busy + idle > 0:
            per_tx = lambda ticks: round(ticks * 1e6 / TCK / tx, 2)  # noqa: E731
            print(
                f"window: {round(tx)} {per_tx(busy)} {round(100 * idle / (busy + idle), 1)} "
                f"{per_tx(last[2] - first[2])} "
                f"{per_tx(last[3] - first[3]) if proxy_pid > 0 else '-'} "
                f"{per_tx(last[4] - first[4])}"
            )
    sys.exit(code)


if __name__ == "__main__":
    try:
        main()
    except KeyboardInterrupt:
        # Die of the SIGINT rather than exit 1: bash runs its INT trap only when the foreground
        # child was killed by the signal, and proxy-mysql.sh's trap is what cleans up.
        signal.signal(signal.SIGINT, signal.SIG_DFL)
        os.kill(os.getpid(), signal.SIGINT)
