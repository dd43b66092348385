# Shell helpers the benchmark scripts share (sourced after scripts/lib/system.sh).

# A process's resident memory in MB ("-" once it is gone).
rss_mb() { awk '/VmRSS/{printf "%.0f", $2/1024}' "/proc/$1/status" 2>/dev/null || echo -; }

wait_http() { # URL PID: until it answers anything, bounded
  for _ in $(seq 1 300); do
    curl -s -o /dev/null "$1" && return 0
    kill -0 "$2" 2>/dev/null || return 1
    sleep 0.1
  done
  return 1
}

# Runs a command in the background and waits for it, so a Ctrl-C or TERM reaches the trap at
# once and the cleanup can stop the command by its pid ($child_pid).
run_child() {
  "$@" &
  child_pid=$!
  local rc=0
  wait "$child_pid" || rc=$?
  child_pid=""
  return "$rc"
}

# Flat CPU scheduling for the run: with the kernel's autogroup on (Debian's default), each
# session is one scheduling group with an equal share, so a pooler started with `-d` (its own
# session: PgBouncer) competed as a group against the script's session, which held pgbench,
# spillway and the database spillway manages. Measured on 2026-12-03: PostgreSQL backends then
# waited up to 582 ms for a CPU (`perf sched latency`) and spillway's p99 at 50 clients read
# 2.2× PgBouncer's; with every process in one flat group the two were within 1.16×. Turned off
# for the run, put back by restore_autogroup (call it from the script's cleanup).
AUTOGROUP=/proc/sys/kernel/sched_autogroup_enabled
autogroup_was=""
flat_scheduling() {
  [ -e "$AUTOGROUP" ] || return 0   # a kernel without autogroup: scheduling is flat already
  if [ ! -w "$AUTOGROUP" ]; then
    echo "note: cannot turn off $AUTOGROUP (not root): results include the autogroup bias" >&2
    return 0
  fi
  autogroup_was=$(cat "$AUTOGROUP")
  echo 0 > "$AUTOGROUP"
}
# Always succeeds: it runs last in EXIT traps, whose last status would become the script's.
restore_autogroup() {
  if [ -n "$autogroup_was" ]; then echo "$autogroup_was" > "$AUTOGROUP" 2>/dev/null || true; fi
  autogroup_was=""
}
