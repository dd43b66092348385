#!/usr/bin/env bash
# The proxy's CPU cost per transaction in instructions (valgrind's callgrind), for two spillway
# binaries side by side: the measure for "a change must not cost more than N% of proxy CPU per
# transaction". Instruction counts do not depend on what else the machine is doing, so two
# builds can be compared on a shared, noisy machine where timing would drown a 2% difference.
#
#   bench/proxy-pg-instructions.sh OLD_SPILLWAY NEW_SPILLWAY
#
# Build the old binary from another checkout with its own target directory, e.g.
#   git worktree add /tmp/old <commit> && (cd /tmp/old && CARGO_TARGET_DIR=/tmp/old-target \
#     cargo build --release -p spillway)
#
# Method: the proxy runs under callgrind in front of the machine's PostgreSQL (127.0.0.1:5432,
# trust), pool of 2, and pgbench sends select-only transactions from 4 clients (so connections
# change hands, and every borrow's checks run) in each query mode. Each (binary, mode) runs
# twice, with SHORT and LONG transactions per client; the difference of the two totals divided
# by the difference in transactions is the cost per transaction, start-up, logins and shutdown
# cancelled out. Results: a markdown table on stdout and in bench/results/.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib/system.sh

OLD="${1:?usage: $0 OLD_SPILLWAY NEW_SPILLWAY}"
NEW="${2:?usage: $0 OLD_SPILLWAY NEW_SPILLWAY}"
SHORT="${SHORT:-250}"
LONG="${LONG:-1250}"
CLIENTS=4
PG_HOST=127.0.0.1
PG_PORT=5432
DB=spillway_instructions

ensure_packages valgrind postgresql-client postgresql-contrib
work=$(mktemp -d /tmp/spillway-instr.XXXXXX)
proxy_pid=
cleanup() {
  [ -n "$proxy_pid" ] && kill -INT "$proxy_pid" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

psql -h "$PG_HOST" -p "$PG_PORT" -U postgres -qAtc "DROP DATABASE IF EXISTS $DB" postgres
psql -h "$PG_HOST" -p "$PG_PORT" -U postgres -qAtc "CREATE DATABASE $DB" postgres
pgbench -h "$PG_HOST" -p "$PG_PORT" -U postgres -i -s 1 -q "$DB" > /dev/null 2>&1

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# Total instructions of one proxy run: $1 binary, $2 pgbench mode, $3 transactions per client.
instructions() {
  local bin=$1 mode=$2 tx=$3 port out
  port=$(free_port)
  out="$work/callgrind.$RANDOM"
  valgrind --tool=callgrind --callgrind-out-file="$out" "$bin" --log warn proxy \
    --target "postgres://postgres:unused@$PG_HOST:$PG_PORT/$DB" \
    --listen "127.0.0.1:$port" --pool-size 2 > "$work/proxy.log" 2>&1 &
  proxy_pid=$!
  for _ in $(seq 1 120); do
    if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then break; fi
    sleep 0.5
  done
  PGPASSWORD=unused timeout 600 pgbench -h 127.0.0.1 -p "$port" -U postgres -n -S \
    -M "$mode" -c "$CLIENTS" -j 1 -t "$tx" "$DB" > "$work/pgbench.log" 2>&1 || {
    cat "$work/pgbench.log" >&2
    exit 1
  }
  kill -INT "$proxy_pid"
  wait "$proxy_pid" 2>/dev/null || true
  proxy_pid=
  # callgrind's "summary:" line holds the total instruction count (Ir).
  awk '/^summary:/ { print $2 }' "$out"
}

mkdir -p bench/results
result="bench/results/proxy-pg-instructions-$(date +%Y%m%d-%H%M%S).md"
{
  echo "| pgbench mode | old instructions/tx | new instructions/tx | new / old |"
  echo "|---|---|---|---|"
} > "$result"
for mode in simple extended prepared; do
  per_tx=()
  for bin in "$OLD" "$NEW"; do
    say "callgrind: $(basename "$(dirname "$(dirname "$bin")")") $mode"
    short=$(instructions "$bin" "$mode" "$SHORT")
    long=$(instructions "$bin" "$mode" "$LONG")
    per_tx+=("$(( (long - short) / ((LONG - SHORT) * CLIENTS) ))")
  done
  ratio=$(python3 -c "print(f'{${per_tx[1]} / ${per_tx[0]}:.4f}')")
  echo "| $mode | ${per_tx[0]} | ${per_tx[1]} | $ratio |" >> "$result"
done
cat "$result"
echo "(saved in $result)"
