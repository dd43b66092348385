#!/usr/bin/env bash
# The queue: spillway's SQS (durable embedded store) against MiniStack and moto server (PyPI),
# and, for durable throughput, a `FOR UPDATE SKIP LOCKED` table on the machine's PostgreSQL and
# JetStream directly, side by side in one run, in interleaved rounds whose order rotates,
# reported as medians and ratios (the machine is shared and noisy; ratios within a run hold).
#
#   bench/queue.sh                                  # 3 rounds, 10 s runs, 1,000,000 backlog
#   QUICK=1 bench/queue.sh                          # 1 round, 3 s runs, 100,000 backlog
#   ROUNDS=2 DURATION=5 BIG=200000 bench/queue.sh   # any mix of the knobs
#
# The load generator is bench/queue_load.rs, a throwaway package outside the workspace (kept
# in ~/.cache/spillway/bench-queue-load with its own target directory): SQS's JSON 1.0
# protocol signed with the aws-sigv4 crate over hyper keep-alive connections, tokio-postgres,
# async-nats; it reports its own CPU time for every run. Each round runs, per target in a
# rotating order:
#   send1     CONC tasks, SendMessage, each waiting for its answer, DURATION s
#   send10    CONC tasks, SendMessageBatch of 10, DURATION s
#   consume   CONC tasks, ReceiveMessage(10) + DeleteMessageBatch from what send10 left, until
#             DURATION s pass or the queue answers empty
#   rate      single sends at a fixed RATE for DURATION s, latency from each send's scheduled
#             start (moto is left out: it answers ~15 sends/s here, BASELINES.md)
#   backlog   (spillway and BIG_TARGETS) CONSUMED receive+deletes from a queue holding only
#             them, then from one holding BIG
# and once, at the end, the report-001 spike: SPIKE POSTs in one second through an HTTP API
# route with an SQS-SendMessage integration, consumed by a Python function through an event
# source mapping (tests/functions/python-sqs-worker, which forwards each record to a `done`
# queue), with the time until every message was consumed.
# Durability: spillway answers a send after fsync (group commit); PostgreSQL with
# synchronous_commit on; JetStream as the machine's nats-server 2.9.10 is configured (see the
# report's notes); MiniStack and moto keep queues in memory.
# Results: a Markdown report on stdout and in bench/results/queue-<time>.md.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib/system.sh
source bench/lib.sh

if [ -n "${QUICK:-}" ]; then
  : "${ROUNDS:=1}" "${DURATION:=3}" "${BIG:=100000}" "${CONSUMED:=10000}"
fi
ROUNDS="${ROUNDS:-3}"
DURATION="${DURATION:-10}"
CONC="${CONC:-32}"
RATE="${RATE:-2000}"
BIG="${BIG:-1000000}"
CONSUMED="${CONSUMED:-20000}"
BIG_TARGETS="${BIG_TARGETS:-pg js}"
TARGETS="${TARGETS:-spillway ministack moto pg js}"
SPIKE="${SPIKE:-2000}"
PG_DSN_BASE="${PG_DSN_BASE:-host=127.0.0.1 port=5432 user=postgres}"
NATS_URL="${NATS_URL:-nats://127.0.0.1:4222}"
MINISTACK_VERSION=1.5.33
MOTO_VERSION=5.2.5

ensure_rust
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/spillway/target}"
TCK=$(getconf CLK_TCK)
repo=$PWD

work=$(mktemp -d /tmp/spillway-bench-queue.XXXXXX)
spillway_pid="" ministack_pid="" moto_pid="" child_pid="" pg_db=""
cleanup() {
  set +e
  local leftovers=""
  [ -n "$spillway_pid" ] && leftovers=$(pgrep -P "$spillway_pid" 2>/dev/null | tr '\n' ' ')
  [ -n "$child_pid" ] && kill -TERM "$child_pid" 2>/dev/null
  [ -n "$spillway_pid" ] && kill -INT "$spillway_pid" 2>/dev/null
  [ -n "$ministack_pid" ] && kill -TERM "$ministack_pid" 2>/dev/null
  [ -n "$moto_pid" ] && kill -TERM "$moto_pid" 2>/dev/null
  for _ in $(seq 1 100); do
    local alive=""
    for p in $child_pid $spillway_pid $ministack_pid $moto_pid $leftovers; do
      kill -0 "$p" 2>/dev/null && alive="$alive $p"
    done
    [ -z "$alive" ] && break
    sleep 0.1
  done
  for p in $child_pid $spillway_pid $ministack_pid $moto_pid $leftovers; do kill -KILL "$p" 2>/dev/null; done
  wait 2>/dev/null
  [ -n "$pg_db" ] && psql "$PG_DSN_BASE dbname=postgres" -qc "DROP DATABASE IF EXISTS $pg_db" >/dev/null 2>&1
  [ -x "${LOAD:-}" ] && for s in bench_q10 bench_q1 bench_big bench_small; do
    "$LOAD" js-delete target="nats:$NATS_URL" queue="$s" >/dev/null 2>&1
  done
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# --- Builds and peers --------------------------------------------------------------------------
say "building spillway (release)"
cargo build --release --locked -q -p spillway
SPILLWAY="$CARGO_TARGET_DIR/release/spillway"

say "building the load generator (release)"
driver="$HOME/.cache/spillway/bench-queue-load"
mkdir -p "$driver"
cat > "$work/driver.toml" <<EOF
[package]
name = "spillway-bench-queue-load"
version = "0.0.0"
edition = "2024"
publish = false

[[bin]]
name = "queue_load"
path = "$repo/bench/queue_load.rs"

[dependencies]
tokio = { version = "1", features = ["full"] }
hyper = { version = "1", features = ["client", "http1"] }
hyper-util = { version = "0.1", features = ["client-legacy", "http1", "tokio"] }
http-body-util = "0.1"
bytes = "1"
futures = "0.3"
serde_json = "1"
aws-sigv4 = { version = "1", features = ["sign-http", "http1"] }
aws-credential-types = "1"
aws-smithy-runtime-api = { version = "1", features = ["client"] }
tokio-postgres = "0.7"
async-nats = "0.42"

[profile.release]
debug = "line-tables-only"

[workspace]
EOF
cmp -s "$work/driver.toml" "$driver/Cargo.toml" || cp "$work/driver.toml" "$driver/Cargo.toml"
# Starts from the workspace's lock so shared crates keep their versions; the rest resolves once.
[ -f "$driver/Cargo.lock" ] || cp Cargo.lock "$driver/Cargo.lock"
(cd "$driver" && CARGO_TARGET_DIR="$driver/target" cargo build --release -q)
LOAD="$driver/target/release/queue_load"

venv="$HOME/.cache/spillway/bench-queue-venv"
if ! "$venv/bin/python" -c "import ministack, moto" 2>/dev/null; then
  say "installing ministack $MINISTACK_VERSION and moto[server] $MOTO_VERSION into $venv"
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q "ministack==$MINISTACK_VERSION" "moto[server]==$MOTO_VERSION"
fi

# --- Measuring helpers -------------------------------------------------------------------------
ticks() { # utime + stime of the given processes, in clock ticks
  local sum=0 p v
  for p in "$@"; do
    v=$(sed 's/^.*) //' "/proc/$p/stat" 2>/dev/null | awk '{print $12 + $13}') || v=0
    sum=$((sum + ${v:-0}))
  done
  echo "$sum"
}
busy() { awk '/^cpu /{print $2+$3+$4+$7+$8, $2+$3+$4+$5+$6+$7+$8}' /proc/stat; } # busy total
field() { tr ' ' '\n' <<< "$2" | sed -n "s/^$1=//p"; }

results="$work/results.txt"
: > "$results"
# load SCENARIO TARGET MODE ARGS... -> one line: scenario target round key=value... server_ms=
# busy_pct=; server_ms is the target process's CPU (- for PostgreSQL and NATS, system services
# whose work is spread over processes), busy_pct the whole machine's over the run.
load() {
  local scenario=$1 target=$2; shift 2
  local pid=""
  case $target in spillway) pid=$spillway_pid ;; ministack) pid=$ministack_pid ;; moto) pid=$moto_pid ;; esac
  local s0=0 s1=0 b0 t0 b1 t1 out
  [ -n "$pid" ] && s0=$(ticks "$pid")
  read -r b0 t0 < <(busy)
  out=$(run_child "$LOAD" "$@" 2> "$work/load.err") || { cat "$work/load.err" >&2; die "$scenario on $target failed"; }
  read -r b1 t1 < <(busy)
  [ -n "$pid" ] && s1=$(ticks "$pid")
  local server=-; [ -n "$pid" ] && server=$(( (s1 - s0) * 1000 / TCK ))
  local errs; errs=$(grep -c '^error' "$work/load.err" || true)
  echo "$scenario $target $round $out server_ms=$server busy_pct=$(( (b1 - b0) * 100 / (t1 - t0 + 1) )) stderr_lines=$errs" >> "$results"
}

# --- Targets -----------------------------------------------------------------------------------
sp_port=$(free_port) api_port=$(free_port)
mkdir -p "$work/spillway"
cat > "$work/spillway/spillway.toml" <<EOF
[stack]
name = "bench-queue"
endpoint = "127.0.0.1:$sp_port"
account = "123456789012"

[users.bench]
access_key_id = "AKIASPILLWAYBENCH001"
secret_access_key = "YmVuY2gtc2VjcmV0LWtleS0wMTIzNDU2Nzg5YWJjZA"
policies = [{ allow = ["sqs:*"], resources = ["*"] }]

[queues.spike]
visibility_timeout = "30s"

[queues.done]

[functions.worker]
runtime = "python"
code = "$repo/tests/functions/python-sqs-worker"
handler = "app.handler"
timeout = "30s"
reserved_concurrency = 2
events = [{ queue = "spike", batch_size = 10, maximum_batching_window = "100ms" }]
policies = [{ allow = ["sqs:GetQueueUrl", "sqs:SendMessage"], resources = ["\${queues.done.arn}"] }]

[apis.ingest]
protocol = "http"
listen = "127.0.0.1:$api_port"

[[apis.ingest.routes]]
route = "POST /submit"
queue = "spike"
parameters = { MessageBody = "\$request.body" }
EOF
declare -A endpoint
if [[ " $TARGETS " == *" spillway "* ]]; then
  say "starting spillway"
  (cd "$work/spillway" && exec "$SPILLWAY" --log warn up . > "$work/spillway.log" 2>&1) &
  spillway_pid=$!
  for _ in $(seq 1 600); do
    grep -q "spillway is up" "$work/spillway.log" 2>/dev/null && break
    kill -0 "$spillway_pid" 2>/dev/null || break
    sleep 0.2
  done
  grep -q "spillway is up" "$work/spillway.log" || { cat "$work/spillway.log"; die "spillway did not start"; }
  endpoint[spillway]="sqs:http://127.0.0.1:$sp_port"
fi
if [[ " $TARGETS " == *" ministack "* ]]; then
  say "starting MiniStack $MINISTACK_VERSION"
  ms_port=$(free_port)
  BIND_HOST=127.0.0.1 GATEWAY_PORT=$ms_port "$venv/bin/ministack" > "$work/ministack.log" 2>&1 &
  ministack_pid=$!
  wait_http "http://127.0.0.1:$ms_port/" "$ministack_pid" || { cat "$work/ministack.log"; die "MiniStack did not start"; }
  endpoint[ministack]="sqs:http://127.0.0.1:$ms_port"
fi
if [[ " $TARGETS " == *" moto "* ]]; then
  say "starting moto server $MOTO_VERSION"
  moto_port=$(free_port)
  "$venv/bin/moto_server" -H 127.0.0.1 -p "$moto_port" > "$work/moto.log" 2>&1 &
  moto_pid=$!
  wait_http "http://127.0.0.1:$moto_port/" "$moto_pid" || { cat "$work/moto.log"; die "moto did not start"; }
  endpoint[moto]="sqs:http://127.0.0.1:$moto_port"
fi
if [[ " $TARGETS " == *" pg "* ]]; then
  pg_db="spillway_bench_queue_$$"
  psql "$PG_DSN_BASE dbname=postgres" -qc "CREATE DATABASE $pg_db" >/dev/null
  endpoint[pg]="pg:$PG_DSN_BASE dbname=$pg_db"
  pg_version=$(psql "$PG_DSN_BASE dbname=$pg_db" -Atc "SHOW server_version")
  pg_sync=$(psql "$PG_DSN_BASE dbname=$pg_db" -Atc "SELECT current_setting('synchronous_commit') || ', fsync ' || current_setting('fsync') || ', wal_sync_method ' || current_setting('wal_sync_method')")
fi
[[ " $TARGETS " == *" js "* ]] && endpoint[js]="nats:$NATS_URL"

# queue_for TARGET NAME -> what the generator's queue= is: a queue URL, a table, a stream.
queue_for() {
  case $1 in
    pg)
      psql "${endpoint[pg]#pg:}" -q -c "SET client_min_messages = warning; DROP TABLE IF EXISTS $2; CREATE TABLE $2 (id bigserial PRIMARY KEY, body text NOT NULL,
        visible_at timestamptz NOT NULL DEFAULT now(), receive_count int NOT NULL DEFAULT 0);
        CREATE INDEX ON $2 (visible_at, id);" >/dev/null
      echo "$2" ;;
    js) "$LOAD" js-setup target="${endpoint[js]}" queue="$2" >/dev/null; echo "$2" ;;
    *) "$LOAD" create target="${endpoint[$1]}" name="$2" ;;
  esac
}

rotate() { local n=$1; shift; local a=("$@") i; for i in "${!a[@]}"; do echo "${a[$(( (i + n) % ${#a[@]} ))]}"; done; }
read -ra targets <<< "$TARGETS"

# --- Backlog queues, filled once ---------------------------------------------------------------
backlog_targets=()
for t in spillway $BIG_TARGETS; do
  [[ " $TARGETS " == *" $t "* ]] && backlog_targets+=("$t")
done
declare -A big_queue
round=0
for t in "${backlog_targets[@]}"; do
  say "$t: filling a queue with $BIG messages (batches of 10)"
  big_queue[$t]=$(queue_for "$t" bench_big)
  if [ "$t" = pg ]; then
    # PostgreSQL fills from the server side: the rows are the same, the generator's time is not.
    psql "${endpoint[pg]#pg:}" -qc "INSERT INTO bench_big (body) SELECT i || '-' || repeat('x', 200) FROM generate_series(1, $BIG) i" -c "VACUUM ANALYZE bench_big" >/dev/null
  else
    load fill "$t" fill target="${endpoint[$t]}" queue="${big_queue[$t]}" count="$BIG" conc="$CONC"
  fi
done
[ -n "$spillway_pid" ] && spillway_rss_big=$(rss_mb "$spillway_pid")
[ -n "$spillway_pid" ] && spillway_disk_big=$(du -sm "$work/spillway/.spillway" | cut -f1)

# --- Rounds ------------------------------------------------------------------------------------
started=$(date +%s)
load_before=$(cut -d' ' -f1-3 /proc/loadavg)
for round in $(seq 1 "$ROUNDS"); do
  for t in $(rotate "$round" "${targets[@]}"); do
    say "round $round of $ROUNDS: $t"
    q1=$(queue_for "$t" "bench_r${round}_q1")
    q10=$(queue_for "$t" "bench_r${round}_q10")
    load send1 "$t" send target="${endpoint[$t]}" queue="$q1" conc="$CONC" batch=1 secs="$DURATION"
    load send10 "$t" send target="${endpoint[$t]}" queue="$q10" conc="$CONC" batch=10 secs="$DURATION"
    load consume "$t" consume target="${endpoint[$t]}" queue="$q10" conc="$CONC" secs="$DURATION"
    if [ "$t" != moto ]; then
      qr=$(queue_for "$t" "bench_r${round}_rate")
      load rate "$t" rate target="${endpoint[$t]}" queue="$qr" rate="$RATE" secs="$DURATION"
    fi
    if [[ " ${backlog_targets[*]} " == *" $t "* ]]; then
      qs=$(queue_for "$t" "bench_r${round}_small")
      if [ "$t" = pg ]; then
        psql "${endpoint[pg]#pg:}" -qc "INSERT INTO $qs (body) SELECT i || '-' || repeat('x', 200) FROM generate_series(1, $CONSUMED) i" -c "VACUUM ANALYZE $qs" >/dev/null
      else
        load fill-small "$t" fill target="${endpoint[$t]}" queue="$qs" count="$CONSUMED" conc="$CONC"
      fi
      load backlog-small "$t" consume target="${endpoint[$t]}" queue="$qs" conc="$CONC" secs=600 max="$CONSUMED"
      load backlog-big "$t" consume target="${endpoint[$t]}" queue="${big_queue[$t]}" conc="$CONC" secs=600 max="$CONSUMED"
    fi
    # JetStream streams of finished rounds are dropped so the server's disk does not fill.
    if [ "$t" = js ]; then
      for s in "bench_r${round}_q1" "bench_r${round}_q10" "bench_r${round}_rate" "bench_r${round}_small"; do
        "$LOAD" js-delete target="${endpoint[js]}" queue="$s" >/dev/null
      done
    fi
  done
done
elapsed=$(( $(date +%s) - started ))

# --- The report-001 spike ----------------------------------------------------------------------
spike_line="" drained="" done_count=""
if [ -n "$spillway_pid" ] && [ "$SPIKE" != 0 ]; then
  say "spike: $SPIKE POSTs in one second through POST /submit"
  round=0
  t0=$(date +%s.%N)
  load spike spillway post url="http://127.0.0.1:$api_port/submit" rate="$SPIKE" count="$SPIKE"
  spike_line=$(tail -1 "$results")
  answered=$(field count "$spike_line")
  metric() { curl -s "http://127.0.0.1:$sp_port/_spillway/metrics" | awk -v m="$1" '$1 == m {print $2}'; }
  # Bounded: the function forwards every record to `done`; wait at most 300 s for all of them.
  for _ in $(seq 1 1500); do
    [ "${answered:-0}" = 0 ] && break
    done_count=$(metric 'spillway_sqs_ApproximateNumberOfMessagesVisible{queue="done"}')
    left=$(metric 'spillway_sqs_ApproximateNumberOfMessagesVisible{queue="spike"}')
    inflight=$(metric 'spillway_sqs_ApproximateNumberOfMessagesNotVisible{queue="spike"}')
    [ "${done_count:-0}" -ge "$answered" ] && [ "${left:-1}" = 0 ] && [ "${inflight:-1}" = 0 ] && break
    sleep 0.2
  done
  drained=$(python3 -c "import sys, time; print(f'{time.time() - float(sys.argv[1]):.1f}')" "$t0")
fi

# --- Report ------------------------------------------------------------------------------------
mkdir -p bench/results
report="bench/results/queue-$(date -u +%Y%m%dT%H%MZ).md"
{
  echo "# Queue benchmark, $(date -u +%Y-%m-%dT%H:%MZ)"
  echo
  echo "Machine: $(nproc) cores, load average $load_before before the rounds; spillway $(git rev-parse --short HEAD 2>/dev/null || echo '?') (release, durable embedded store);"
  echo "MiniStack $MINISTACK_VERSION and moto $MOTO_VERSION (in memory); PostgreSQL ${pg_version:-'-'} (synchronous_commit ${pg_sync:-'-'}); nats-server $(nats-server --version 2>/dev/null | sed 's/^nats-server: //') (file storage, its default sync).";
  echo "$ROUNDS interleaved rounds of ${DURATION}s runs, $CONC concurrent tasks, 200-byte bodies, fixed rate $RATE msg/s; backlog $BIG waiting vs $CONSUMED; ${elapsed}s in all; medians."
  echo
} > "$report"
python3 - "$results" "$RATE" "$BIG" "$CONSUMED" "${spillway_rss_big:--}" "${spillway_disk_big:--}" "$SPIKE" "${done_count:-}" "${drained:-}" >> "$report" <<'PY'
import statistics, sys
from collections import defaultdict
path, rate, big, consumed, rss, disk, spike, done_count, drained = sys.argv[1:]
runs = defaultdict(dict)  # (scenario, target) -> round -> {field: value}
for line in open(path):
    f = line.split()
    runs[(f[0], f[1])][int(f[2])] = dict(kv.split("=", 1) for kv in f[3:])

def num(x):
    try:
        return float(x)
    except (TypeError, ValueError):
        return None

def vals(s, t, k):
    return {r: num(v.get(k)) for r, v in runs.get((s, t), {}).items() if num(v.get(k)) is not None}

def med(s, t, k):
    v = list(vals(s, t, k).values())
    return statistics.median(v) if v else None

def paired(s, a, b, k, sb=None):
    va, vb = vals(s, a, k), vals(sb or s, b, k)
    xs = [va[r] / vb[r] for r in va if r in vb and vb[r]]
    return statistics.median(xs) if xs else None

def fmt(v, d=2):
    if v is None:
        return "-"
    return f"{v:,.0f}" if abs(v) >= 100 else f"{v:.{d}f}"

def per_msg_us(s, t, k):
    xs = [float(v[k]) * 1000 / float(v["count"]) for v in runs.get((s, t), {}).values()
          if num(v.get(k)) is not None and num(v.get("count"))]
    return statistics.median(xs) if xs else None

LABEL = {"spillway": "spillway (fsync'd)", "ministack": "MiniStack (memory)", "moto": "moto (memory)",
         "pg": "PostgreSQL SKIP LOCKED (synchronous_commit)", "js": "JetStream (file)"}
targets = [t for t in LABEL if any(k[1] == t for k in runs)]

print("## Throughput, messages/s\n")
print("| target | send, batch 1 | send, batch 10 | receive(10)+delete | generator CPU µs/msg (send1) | server CPU µs/msg (send1) | machine busy % (send1) | errors |")
print("|---|---|---|---|---|---|---|---|")
for t in targets:
    errs = sum(int(v.get("errors", 0)) for s in ("send1", "send10", "consume") for v in runs.get((s, t), {}).values())
    print(f"| {LABEL[t]} | {fmt(med('send1', t, 'rate'))} | {fmt(med('send10', t, 'rate'))} | {fmt(med('consume', t, 'rate'))} "
          f"| {fmt(per_msg_us('send1', t, 'cpu_ms'), 1)} | {fmt(per_msg_us('send1', t, 'server_ms'), 1)} | {fmt(med('send1', t, 'busy_pct'))} | {errs} |")
print()
if "spillway" in targets:
    print("Ratios, spillway over each peer (paired by round, medians); target: ≥ 5× MiniStack's send and receive+delete while durable.\n")
    print("| peer | send, batch 1 | send, batch 10 | receive(10)+delete |")
    print("|---|---|---|---|")
    for t in targets:
        if t == "spillway":
            continue
        print(f"| {LABEL[t]} | {fmt(paired('send1', 'spillway', t, 'rate'))}× | {fmt(paired('send10', 'spillway', t, 'rate'))}× | {fmt(paired('consume', 'spillway', t, 'rate'))}× |")
    print()

print(f"## Single sends at a fixed {int(rate):,} msg/s (latency from each send's scheduled start)\n")
print("| target | achieved msg/s | p50 ms | p99 ms | p99.9 ms | max ms | generator CPU µs/msg | errors |")
print("|---|---|---|---|---|---|---|---|")
for t in targets:
    if ("rate", t) not in runs:
        continue
    errs = sum(int(v.get("errors", 0)) for v in runs[("rate", t)].values())
    print(f"| {LABEL[t]} | {fmt(med('rate', t, 'rate'))} | {fmt(med('rate', t, 'p50_ms'), 3)} | {fmt(med('rate', t, 'p99_ms'), 3)} "
          f"| {fmt(med('rate', t, 'p999_ms'), 3)} | {fmt(med('rate', t, 'max_ms'), 3)} | {fmt(per_msg_us('rate', t, 'cpu_ms'), 1)} | {errs} |")
print("\nTarget: p99 < 5 ms at 2,000 msg/s.\n")

bl = [t for t in targets if ("backlog-big", t) in runs]
if bl:
    print(f"## Receive(10)+delete with {int(big):,} waiting vs a queue holding only the {int(consumed):,} consumed\n")
    print("| target | fill, batch 10, msg/s | near-empty queue msg/s | big backlog msg/s | big / near-empty |")
    print("|---|---|---|---|---|")
    for t in bl:
        print(f"| {LABEL[t]} | {fmt(med('fill', t, 'rate'))} | {fmt(med('backlog-small', t, 'rate'))} | {fmt(med('backlog-big', t, 'rate'))} "
              f"| {fmt(paired('backlog-big', t, t, 'rate', 'backlog-small'))} |")
    print(f"\nTarget: the backlog's rate within 20 % of the near-empty queue's (ratio ≥ 0.80). spillway with {int(big):,} waiting: RSS {rss} MB, store {disk} MB on disk.\n")

if ("spike", "spillway") in runs:
    v = runs[("spike", "spillway")][0]
    print(f"## Report 001's spike: {int(spike):,} POSTs in one second through an HTTP API SQS-SendMessage route\n")
    print("| answered 200 | errors | p50 ms | p99 ms | max ms | offered in s | consumed by the function | all consumed after s |")
    print("|---|---|---|---|---|---|---|---|")
    print(f"| {v.get('count')} | {v.get('errors')} | {v.get('p50_ms')} | {v.get('p99_ms')} | {v.get('max_ms')} | {v.get('offered_secs')} | {done_count or '-'} | {drained or '-'} |")
    print("\nTarget: all answered 200 within 100 ms p99, every message consumed.\n")

print("## Every run\n")
print("| scenario | target | round | fields |")
print("|---|---|---|---|")
for line in open(path):
    f = line.split()
    print(f"| {f[0]} | {f[1]} | {f[2]} | {' '.join(f[3:])} |")
PY
cat "$report"
say "written to $report"
