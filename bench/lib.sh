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
