#!/usr/bin/env bash
# PostgreSQL proxy benchmark: direct PostgreSQL, PgBouncer (Debian package) and spillway, side by
# side in one run, interleaved, reporting ratios (the machine is shared and noisy; absolute
# numbers drift, ratios within one run hold).
#
#   bench/proxy-pg.sh                 # full run
#   DURATION=5 ROUNDS=1 bench/proxy-pg.sh   # quick look
#
# Setup, as in ../shared/BASELINES.md: a private PostgreSQL (max_connections 130: 100 and room for
# the two-worker proxy's pool; SCRAM) started
# by spillway itself, which both poolers reach through its Unix socket (pgbench "direct" uses
# TCP), `pgbench -i -s 10`, both poolers in transaction mode with a pool of 20 server
# connections, pgbench over 127.0.0.1 with 2 threads. Scenarios:
#   select-1-simple     pgbench -S -c 1    -M simple     (one client: the latency a proxy adds)
#   select-50-simple    pgbench -S -c 50   -M simple
#   select-50-prepared  pgbench -S -c 50   -M prepared   (PgBouncer 1.18 has no prepared support)
#   select-1000-simple  pgbench -S -c 1000 -M simple     (direct fails: max_connections 100)
#   connect-20          pgbench -S -C -c 20              (a new SCRAM login per transaction)
# and the memory each pooler holds for 10,000 idle logged-in clients. The 50- and 1,000-client
# scenarios also run on a second spillway proxy of the same process with `workers = 2`
# ("spillway-2w"; WORKERS2=0 skips it): its CPU per transaction against the one-worker proxy's
# is the cost of spreading over threads (a third table). For each run,
# pgbench_window.py also measures the CPU per transaction of the whole machine, of pgbench and of
# the proxy over the run's steady middle: since all three share the cores, that bounds the TPS
# any proxy could reach here (a second table).
# Results: a markdown table on stdout and in bench/results/.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib/system.sh
source bench/lib.sh

DURATION="${DURATION:-10}"
ROUNDS="${ROUNDS:-3}"
IDLE_CLIENTS="${IDLE_CLIENTS:-10000}"
WORKERS2="${WORKERS2:-1}"
POOL=20

ensure_packages postgresql postgresql-client postgresql-contrib pgbouncer
ensure_rust
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/spillway/target}"
say "building spillway and the idle-client helper (release)"
cargo build --release --locked -q -p spillway
cargo build --release --locked -q -p spillway-testkit --example idle_clients
SPILLWAY="$CARGO_TARGET_DIR/release/spillway"
IDLE="$CARGO_TARGET_DIR/release/examples/idle_clients"
ulimit -n "$(ulimit -Hn)"

work=$(mktemp -d /tmp/spillway-bench.XXXXXX)
chmod 755 "$work"
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill -INT "$p" 2>/dev/null || true; done
  sleep 2
  [ -f "$work/pgbouncer.pid" ] && kill "$(cat "$work/pgbouncer.pid")" 2>/dev/null || true
  rm -rf "$work"
  restore_autogroup
}
trap cleanup EXIT
flat_scheduling

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# --- PostgreSQL and spillway's proxy, from one stack --------------------------------------------
cat > "$work/spillway.toml" <<EOF
[stack]
name = "bench"
endpoint = "127.0.0.1:0"

[databases.bench]
engine = "postgres"
# 100 as in ../shared/BASELINES.md, plus room for the two-worker proxy's pool (20): direct at
# 50 clients beside three pools of 20 kept open needs 110 and more.
max_connections = $((100 + 30))
# pgbench "direct" needs a port; both poolers reach the server through its socket.
tcp = true

[secrets.bench]
username = "bench"
password = "bench-password"

[proxies.bench]
database = "bench"
listen = "127.0.0.1:0"
auth = [{ secret = "bench" }]
max_connections = $POOL
connection_borrow_timeout = "120s"

# The same proxy on two worker threads (the server allows 100: both pools fit).
[proxies.bench2w]
database = "bench"
listen = "127.0.0.1:0"
auth = [{ secret = "bench" }]
max_connections = $POOL
connection_borrow_timeout = "120s"
workers = 2
EOF
say "starting PostgreSQL and spillway"
"$SPILLWAY" --log warn up "$work" > "$work/spillway.out" 2>&1 &
pids+=($!)
spillway_pid=$!
for _ in $(seq 1 240); do grep -q "spillway is up" "$work/spillway.out" && break; sleep 0.5; done
grep -q "spillway is up" "$work/spillway.out" || { cat "$work/spillway.out"; die "spillway did not start"; }
db_port=$(cat "$work/.spillway/databases/bench/port")
proxy_port() { grep -E "^ *proxies\.$1 " "$work/spillway.out" | grep -oE '127\.0\.0\.1:[0-9]+' | head -1 | cut -d: -f2; }
sp_port=$(proxy_port bench)
sp2_port=$(proxy_port bench2w)
[ -n "$sp_port" ] && [ -n "$sp2_port" ] || { cat "$work/spillway.out"; die "no proxy ports in spillway's output"; }

# --- PgBouncer ---------------------------------------------------------------------------------
pgb_port=$(free_port)
# PgBouncer at its best: the user's SCRAM verifier from pg_authid in its auth file (as
# auth_query would fetch it), so a login costs it two HMACs like spillway, not 4,096 PBKDF2
# rounds, and it logs in to the server by SCRAM pass-through. spillway derives its verifier from
# the secret's password once.
verifier=$(PGPASSWORD=$(cat "$work/.spillway/databases/bench/admin-password") psql -X -At \
  -h "$work/.spillway/databases/bench/run" -p "$db_port" -U spillway -d bench \
  -c "SELECT rolpassword FROM pg_authid WHERE rolname = 'bench'")
case "$verifier" in SCRAM-SHA-256\$*) ;; *) die "no SCRAM verifier for the bench user: $verifier" ;; esac
printf '"bench" "%s"\n' "$verifier" > "$work/users.txt"
cat > "$work/pgbouncer.ini" <<EOF
[databases]
bench = host=$work/.spillway/databases/bench/run port=$db_port dbname=bench
[pgbouncer]
listen_addr = 127.0.0.1
listen_port = $pgb_port
unix_socket_dir =
auth_type = scram-sha-256
auth_file = $work/users.txt
pool_mode = transaction
default_pool_size = $POOL
max_client_conn = 20000
logfile = $work/pgbouncer.log
pidfile = $work/pgbouncer.pid
EOF
if [ "$(id -u)" -eq 0 ]; then
  chown postgres "$work/pgbouncer.ini" "$work/users.txt"
  touch "$work/pgbouncer.log"; chown postgres "$work/pgbouncer.log"; chown postgres "$work"
  # runuser applies PAM limits (a soft limit of 1024 open files, too few for 1,000 clients):
  # raise it again inside.
  runuser -u postgres -- sh -c "ulimit -n $(ulimit -Hn); exec pgbouncer -d '$work/pgbouncer.ini'"
else
  pgbouncer -d "$work/pgbouncer.ini"
fi
for _ in $(seq 1 50); do [ -s "$work/pgbouncer.pid" ] && break; sleep 0.1; done
pgb_pid=$(cat "$work/pgbouncer.pid")

export PGPASSWORD=bench-password
say "pgbench -i -s 10"
pgbench -h 127.0.0.1 -p "$db_port" -U bench -i -s 10 -q bench > "$work/init.log" 2>&1

rss_kb() { awk '/^VmRSS/ {print $2}' "/proc/$1/status" 2>/dev/null || echo 0; }

# run NAME PORT PID SCENARIO ARGS... -> appends "scenario name tps p50_us p99_us proxy_us_per_tx
# machine_us_per_tx idle_pct pgbench_us_per_tx" to results. CPU figures come from
# pgbench_window.py: the steady middle of the run, per transaction (pgbench's logins at 1,000
# clients would otherwise count as transaction cost).
results="$work/results.txt"
window="$PWD/bench/pgbench_window.py"
run() {
  local name=$1 port=$2 pid=$3 scenario=$4; shift 4
  local logdir="$work/log-$name-$scenario-$RANDOM"; mkdir -p "$logdir"
  local out
  if ! out=$(cd "$logdir" && timeout $((DURATION * 4 + 120)) python3 "$window" "$pid" -- -h 127.0.0.1 -p "$port" -U bench -j 2 -T "$DURATION" -l --sampling-rate=0.1 "$@" bench 2>&1); then
    echo "$scenario $name fails - - - - - -" >> "$results"
    return
  fi
  echo "$out" > "$work/last-$name-$scenario.out"
  local tps; tps=$(grep -oE 'tps = [0-9.]+' <<< "$out" | head -1 | cut -d' ' -f3 || true)
  local failed; failed=$(grep -oE 'failed transactions: [0-9]+' <<< "$out" | grep -oE '[0-9]+$' || echo 0)
  local cpu; cpu=$(grep -oE '^window: .*' <<< "$out" | cut -d' ' -f3- || true)
  if [ -z "$tps" ] || [ "${failed:-0}" != 0 ] || [ -z "$cpu" ]; then
    echo "$scenario $name fails - - - - - -" >> "$results"
    return
  fi
  local pct; pct=$(cat "$logdir"/pgbench_log.* 2>/dev/null | awk '{print $3}' | sort -n | awk '{a[NR]=$1} END {if (NR==0) {print "- -"} else {print a[int(NR*0.5)+1], a[int(NR*0.99)+1]}}')
  # window: machine idle pgbench proxy -> results: proxy machine idle pgbench
  read -r machine idle pgb proxy <<< "$cpu"
  echo "$scenario $name $tps $pct $proxy $machine $idle $pgb" >> "$results"
  rm -rf "$logdir"
}

base_targets=("direct $db_port 0" "pgbouncer $pgb_port $pgb_pid" "spillway $sp_port $spillway_pid")
scenarios=(
  "select-1-simple -S -c 1 -M simple"
  "select-50-simple -S -c 50 -M simple"
  "select-50-prepared -S -c 50 -M prepared"
  "select-1000-simple -S -c 1000 -M simple"
  "connect-20 -S -C -c 20"
)
for round in $(seq 1 "$ROUNDS"); do
  for sc in "${scenarios[@]}"; do
    read -r scenario args <<< "$sc"
    targets=("${base_targets[@]}")
    case "$scenario" in
      select-50-simple|select-1000-simple)
        [ "$WORKERS2" = 1 ] && targets+=("spillway-2w $sp2_port $spillway_pid") ;;
    esac
    # Rotate the order each round so no target always runs first (or right after another).
    for i in "${!targets[@]}"; do
      t=${targets[$(( (i + round) % ${#targets[@]} ))]}
      read -r name port pid <<< "$t"
      say "round $round: $scenario on $name"
      # shellcheck disable=SC2086
      run "$name" "$port" "$pid" "$scenario" $args
    done
  done
done

# --- Memory of idle clients -------------------------------------------------------------------
idle_rss() {
  local name=$1 port=$2 pid=$3
  local before; before=$(rss_kb "$pid")
  coproc IDLER { "$IDLE" "host=127.0.0.1 port=$port user=bench password=bench-password dbname=bench" "$IDLE_CLIENTS"; }
  local line; read -r line <&"${IDLER[0]}" || true
  local held=${line#ready }
  local during; during=$(rss_kb "$pid")
  exec {IDLER[1]}>&-
  wait "$IDLER_PID" 2>/dev/null || true
  echo "idle $name $held $before $during" >> "$results"
}
say "holding $IDLE_CLIENTS idle clients on each pooler"
idle_rss pgbouncer "$pgb_port" "$pgb_pid"
idle_rss spillway "$sp_port" "$spillway_pid"

mkdir -p bench/results
report="bench/results/proxy-pg-$(date -u +%Y%m%dT%H%MZ).md"
python3 - "$results" "$DURATION" "$ROUNDS" "$IDLE_CLIENTS" "$(nproc)" > "$report" <<'PY'
import statistics, sys
from collections import defaultdict
path, duration, rounds, idle_n, cores = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[5])
runs = defaultdict(list)
idle = {}
for line in open(path):
    f = line.split()
    if f[0] == "idle":
        idle[f[1]] = (int(f[2] or 0), int(f[3]), int(f[4]))
        continue
    runs[(f[0], f[1])].append(f[2:])
def med(vals):
    nums = [float(v) for v in vals if v not in ("-", "fails")]
    return statistics.median(nums) if nums else None
def fmt(v, unit=""):
    return "fails" if v is None else (f"{v:,.0f}{unit}" if v >= 100 else f"{v:.2f}{unit}")
def ratio(a, b):
    return "-" if a is None or b is None else f"{a / b:.2f}x"
FIELDS = ["tps", "p50", "p99", "proxy", "machine", "idle", "pgbench"]
SCENARIOS = ["select-1-simple", "select-50-simple", "select-50-prepared", "select-1000-simple", "connect-20"]
rows = {}
for scenario in SCENARIOS:
    row = rows[scenario] = {}
    for t in ["direct", "pgbouncer", "spillway", "spillway-2w"]:
        ok = [r for r in runs.get((scenario, t), []) if r[0] != "fails"]
        row[t] = {k: (med([r[i] for r in ok]) if ok else None) for i, k in enumerate(FIELDS)}
print(f"# Proxy benchmark ({rounds} interleaved rounds of {duration}s, medians, {cores} cores)\n")
print("| scenario | direct TPS | PgBouncer TPS | spillway TPS | spillway / PgBouncer | spillway / direct | p50 µs (direct / PgBouncer / spillway) | p99 µs (same) | proxy CPU µs per tx (PgBouncer / spillway) |")
print("|---|---|---|---|---|---|---|---|---|")
for scenario in SCENARIOS:
    row = rows[scenario]
    s, p, d = row["spillway"], row["pgbouncer"], row["direct"]
    print(f"| {scenario} | {fmt(d['tps'])} | {fmt(p['tps'])} | {fmt(s['tps'])} | {ratio(s['tps'], p['tps'])} | {ratio(s['tps'], d['tps'])} "
          f"| {fmt(d['p50'])} / {fmt(p['p50'])} / {fmt(s['p50'])} | {fmt(d['p99'])} / {fmt(p['p99'])} / {fmt(s['p99'])} | {fmt(p['proxy'])} / {fmt(s['proxy'])} |")
print()
# Where a transaction's CPU goes. pgbench, PostgreSQL and the proxy share the same cores, so
# with the machine busy, a proxy that cost nothing would leave (machine - proxy) per transaction:
# the ceiling below is PgBouncer's TPS scaled by machine / (machine - PgBouncer's proxy CPU),
# shown where the machine was at least 90% busy.
print("| scenario | target | machine CPU µs per tx | pgbench | proxy | rest (PostgreSQL, kernel) | machine idle | ceiling for a proxy costing nothing: / PgBouncer, / direct |")
print("|---|---|---|---|---|---|---|---|")
for scenario in SCENARIOS:
    row = rows[scenario]
    for t in ["direct", "pgbouncer", "spillway"]:
        r = row[t]
        if r["machine"] is None:
            continue
        rest = r["machine"] - (r["pgbench"] or 0) - (r["proxy"] or 0)
        ceiling = "-"
        p, d = row["pgbouncer"], row["direct"]
        # Only where the machine was busy: with cores idle (one client) latency decides, not CPU.
        if t == "pgbouncer" and p["proxy"] and p["machine"] > p["proxy"] and p["idle"] <= 10:
            bound_tps = p["tps"] * p["machine"] / (p["machine"] - p["proxy"])
            ceiling = f"{ratio(bound_tps, p['tps'])}, {ratio(bound_tps, d['tps'])}"
        print(f"| {scenario} | {t} | {fmt(r['machine'])} | {fmt(r['pgbench'])} | {fmt(r['proxy']) if r['proxy'] is not None else '-'} | {fmt(rest)} | {r['idle']:.1f}% | {ceiling} |")
print()
# Two workers against one: the same proxy code, in the same process, on two threads. On a
# 2-core machine shared with pgbench and PostgreSQL a second thread cannot add throughput;
# what it shows is the cost of the spread (shared lock, hand-overs across threads).
two = [s for s in SCENARIOS if rows[s]["spillway-2w"]["tps"] is not None]
if two:
    print("| scenario | TPS 1 worker / 2 workers | p99 µs (same) | proxy CPU µs per tx (same) | 2 workers / 1 |")
    print("|---|---|---|---|---|")
    for scenario in two:
        a, b = rows[scenario]["spillway"], rows[scenario]["spillway-2w"]
        print(f"| {scenario} | {fmt(a['tps'])} / {fmt(b['tps'])} | {fmt(a['p99'])} / {fmt(b['p99'])} | {fmt(a['proxy'])} / {fmt(b['proxy'])} | {ratio(b['proxy'], a['proxy'])} |")
    print()
print(f"| idle clients | held | RSS before | RSS holding them | per client |")
print("|---|---|---|---|---|")
for t in ["pgbouncer", "spillway"]:
    if t in idle:
        held, before, during = idle[t]
        per = (during - before) / held if held else 0
        print(f"| {t} | {held:,} | {before/1024:.1f} MB | {during/1024:.1f} MB | {per:.2f} KB |")
PY
cat "$report"
say "written to $report"
