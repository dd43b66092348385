#!/usr/bin/env bash
# MySQL proxy benchmark: MariaDB direct and through spillway's proxy, side by side in one run,
# interleaved, reporting ratios (the machine is shared and noisy; absolute numbers drift, ratios
# within one run hold). The MySQL sibling of bench/proxy-pg.sh.
#
#   bench/proxy-mysql.sh                          # full run
#   DURATION=5 ROUNDS=1 bench/proxy-mysql.sh      # quick look (DURATION >= 4: the CPU window
#                                                 # needs three per-second reports)
#   SYSBENCH=0 IDLE_CLIENTS=0 STORM_RATES="2500 3000" bench/proxy-mysql.sh   # storm only
# Also: STORM_SECONDS (10), TLS_KEY=ec (ECDSA P-256 instead of RSA-2048), PERF_DIR=dir (perf
# profiles of spillway after the rounds), SKIP_BUILD=1 (with SPILLWAY= and the built example),
# KEEP_WORK=1 (keep the temp dir with the logs).
#
# Setup: a private MariaDB (the Debian package's mariadbd, started here in a temp dir with its
# default max_connections of 151, mysql_native_password, and a certificate so that direct
# clients can use TLS; spillway's managed servers have no TLS option), which spillway's proxy
# reaches over loopback TCP as an external `url` database (pool of 20, transaction mode). The
# proxy's client side has TLS (the same RSA-2048 certificate as the server) and two users: `app`
# (password) and `iam` (RDS IAM tokens required). sysbench 1.0.20 `oltp_point_select` over
# 127.0.0.1, `--tables=1 --table-size=10000`. Scenarios:
#   point-1-text        --threads=1    --db-ps-mode=disable  (one client: the latency a proxy adds)
#   point-50-text       --threads=50   --db-ps-mode=disable
#   point-50-prepared   --threads=50   --db-ps-mode=auto     (binary prepared statements)
#   point-1000-text     --threads=1000 --db-ps-mode=disable  (direct fails: max_connections 151)
#   point-1000-prepared --threads=1000 --db-ps-mode=auto
#   storm-RATE          a new connection per query at RATE/s (crates/spillway-proxy/examples/my_storm.rs, open loop):
#                       direct = TLS + mysql_native_password; spillway = TLS + an IAM token
#                       (mysql_clear_password); then one SELECT ... WHERE id IN (10 ids), close
# and the memory spillway holds for 10,000 idle logged-in clients (bench/mysql_idle.py). sysbench_window.py measures
# the CPU per transaction of the machine, sysbench, the proxy and mariadbd over each run's steady
# middle. ProxySQL is not packaged in Debian and cannot be fetched here, so it is not compared.
# Results: a markdown table on stdout and in bench/results/.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib/system.sh
source bench/lib.sh

DURATION="${DURATION:-10}"
ROUNDS="${ROUNDS:-3}"
IDLE_CLIENTS="${IDLE_CLIENTS:-10000}"
STORM_RATES="${STORM_RATES:-200 500 1000 1500 2000}"
STORM_SECONDS="${STORM_SECONDS:-10}"
SYSBENCH="${SYSBENCH:-1}"  # SYSBENCH=0: the storm (and idle clients) only
POOL=20
REGION=us-east-1
KEY_ID=AKIASPILLWAYBENCH001
SECRET_KEY=c3BpbGx3YXktYmVuY2gta2V5LW9ubHktMDEyMzQ1

ensure_packages mariadb-server mariadb-client sysbench openssl
python3 -c 'import boto3' 2>/dev/null || ensure_packages python3-boto3
ensure_rust
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/spillway/target}"
if [ -z "${SKIP_BUILD:-}" ]; then
  say "building spillway and the storm client (release)"
  # One invocation: two would unify dependency features differently (the example brings
  # spillway-proxy's dev-dependencies) and each would rebuild half the tree the other built.
  cargo build --release --locked -q -p spillway --bin spillway -p spillway-proxy --example my_storm
fi
SPILLWAY="${SPILLWAY:-$CARGO_TARGET_DIR/release/spillway}"
STORM="$CARGO_TARGET_DIR/release/examples/my_storm"
ulimit -n "$(ulimit -Hn)"

work=$(mktemp -d /tmp/spillway-mybench.XXXXXX)
chmod 755 "$work"
pids=()
cleanup() {
  trap - EXIT INT TERM
  for p in ${perf_pid:-} ${idler_pid:-}; do kill -INT "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do kill -INT "$p" 2>/dev/null || true; done
  [ -n "${db_pid:-}" ] && kill -TERM "$db_pid" 2>/dev/null || true
  for _ in $(seq 1 50); do
    alive=0
    for p in "${pids[@]}" ${db_pid:-}; do kill -0 "$p" 2>/dev/null && alive=1; done
    [ "$alive" = 0 ] && break
    sleep 0.2
  done
  for p in "${pids[@]}" ${db_pid:-}; do kill -KILL "$p" 2>/dev/null || true; done
  if [ -n "${KEEP_WORK:-}" ]; then say "kept $work"; else rm -rf "$work"; fi
  restore_autogroup
}
trap cleanup EXIT
flat_scheduling
# Ctrl-C reaches every child: `timeout --foreground` below keeps them in our process group
# (plain timeout makes its own, out of the terminal's reach); bash runs this trap only if the
# foreground child died of the signal, so run and storm also stop on a child's exit status 130.
trap 'exit 130' INT TERM

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# --- MariaDB, with TLS ---------------------------------------------------------------------------
say "starting a private MariaDB"
# TLS_KEY=ec: an ECDSA P-256 certificate instead of RSA-2048 (RDS's certificates are RSA).
case "${TLS_KEY:-rsa}" in
  rsa) newkey=(-newkey rsa:2048) ;;
  ec) newkey=(-newkey ec -pkeyopt ec_paramgen_curve:prime256v1) ;;
  *) die "TLS_KEY is rsa or ec" ;;
esac
openssl req -x509 "${newkey[@]}" -nodes -days 1 -subj /CN=localhost \
  -keyout "$work/tls.key" -out "$work/tls.crt" 2>/dev/null
chmod 644 "$work/tls.key"
mariadb-install-db --no-defaults --datadir="$work/data" --auth-root-authentication-method=normal \
  --skip-test-db --user="$(id -un)" > "$work/install.log" 2>&1 || { cat "$work/install.log"; die "mariadb-install-db failed"; }
db_port=$(free_port)
mariadbd --no-defaults --user="$(id -un)" --datadir="$work/data" --socket="$work/mysqld.sock" \
  --port="$db_port" --bind-address=127.0.0.1 --pid-file="$work/mariadbd.pid" \
  --skip-name-resolve --innodb-buffer-pool-size=64M --character-set-server=utf8mb4 \
  --ssl-cert="$work/tls.crt" --ssl-key="$work/tls.key" --log-error="$work/mariadbd.err" &
db_pid=$!
sql() { mariadb --no-defaults -S "$work/mysqld.sock" -u root -N -B -e "$1"; }
for _ in $(seq 1 120); do sql "SELECT 1" >/dev/null 2>&1 && break; sleep 0.5; done
sql "SELECT 1" >/dev/null || { cat "$work/mariadbd.err"; die "mariadbd did not start"; }
sql "CREATE DATABASE shop;
     CREATE USER 'app'@'%' IDENTIFIED BY 'app-password'; GRANT ALL ON shop.* TO 'app'@'%';
     CREATE USER 'iam'@'%' IDENTIFIED BY 'iam-password'; GRANT ALL ON shop.* TO 'iam'@'%';"
[ "$(sql "SELECT @@have_ssl")" = YES ] || die "MariaDB has no TLS: $(sql "SELECT @@have_ssl")"
max_conn=$(sql "SELECT @@max_connections")

# --- spillway's proxy ------------------------------------------------------------------------------
cat > "$work/spillway.toml" <<EOF
[stack]
name = "bench"
endpoint = "127.0.0.1:0"
region = "$REGION"

[databases.main]
engine = "mysql"
url = "mysql://app:app-password@127.0.0.1:$db_port/shop"

[secrets.app]
username = "app"
password = "app-password"

[secrets.iam]
username = "iam"
password = "iam-password"

[users.signer]
access_key_id = "$KEY_ID"
secret_access_key = "$SECRET_KEY"
policies = [{ allow = ["rds-db:connect"], resources = ["\${proxies.main.dbuser_arn}/iam"] }]

[proxies.main]
database = "main"
listen = "127.0.0.1:0"
tls = { cert = "$work/tls.crt", key = "$work/tls.key" }
auth = [{ secret = "app" }, { secret = "iam", iam = "required" }]
max_connections = $POOL
connection_borrow_timeout = "120s"
EOF
say "starting spillway"
"$SPILLWAY" --log warn up "$work" > "$work/spillway.out" 2>&1 &
pids+=($!)
spillway_pid=$!
for _ in $(seq 1 240); do grep -q "spillway is up" "$work/spillway.out" && break; sleep 0.5; done
grep -q "spillway is up" "$work/spillway.out" || { cat "$work/spillway.out"; die "spillway did not start"; }
sp_port=$(grep "^proxies.main" "$work/spillway.out" | grep -oE '127\.0\.0\.1:[0-9]+' | head -1 | cut -d: -f2)
[ -n "$sp_port" ] || { cat "$work/spillway.out"; die "no proxy port in spillway's output"; }

SB_COMMON=(oltp_point_select --db-driver=mysql --mysql-host=127.0.0.1 --mysql-user=app
  --mysql-password=app-password --mysql-db=shop --tables=1 --table-size=10000)
say "sysbench prepare (10,000 rows)"
sysbench "${SB_COMMON[@]}" --mysql-port="$db_port" prepare > "$work/prepare.log" 2>&1 || { cat "$work/prepare.log"; die "sysbench prepare failed"; }

rss_kb() { awk '/^VmRSS/ {print $2}' "/proc/$1/status" 2>/dev/null || echo 0; }

# A child that caught Ctrl-C and exited 130 (timeout does) leaves bash's INT trap unrun: stop
# here instead. Ctrl-C also stops spillway (it shares our process group), which catches the
# cases where no child reports the signal (the idle clients just see their logins fail).
stop_if_interrupted() {
  case "$1" in 130 | 143) say "interrupted"; exit 130 ;; esac
  kill -0 "$spillway_pid" 2>/dev/null || { say "spillway has stopped (interrupted?)"; exit 130; }
}

# run NAME PORT PID SCENARIO ARGS... -> appends "scenario name tps p50_us p95_us proxy_us machine_us
# idle_pct sysbench_us db_us" to results, or "scenario name fails REASON".
results="$work/results.txt"
window="$PWD/bench/sysbench_window.py"
run() {
  local name=$1 port=$2 pid=$3 scenario=$4; shift 4
  local out rc=0
  out=$(timeout --foreground $((DURATION * 4 + 120)) python3 "$window" "$pid" "$db_pid" -- "${SB_COMMON[@]}" \
      --mysql-port="$port" --time="$DURATION" --report-interval=1 --histogram=on --percentile=95 "$@" run 2>&1) || rc=$?
  stop_if_interrupted "$rc"
  if [ "$rc" != 0 ]; then
    local why; why=$(grep -m1 -oE "(FATAL|error).*" <<< "$out" | tr ' ' '_' | cut -c1-100 || true)
    echo "$out" > "$work/fail-$name-$scenario.out"
    echo "$scenario $name fails ${why:-exit}" >> "$results"
    return
  fi
  local tps; tps=$(grep -oE 'transactions: +[0-9]+ +\([0-9.]+' <<< "$out" | grep -oE '[0-9.]+$' || true)
  local errs; errs=$(grep -oE 'ignored errors: +[0-9]+' <<< "$out" | grep -oE '[0-9]+$' || echo 0)
  local cpu; cpu=$(grep -oE '^window: .*' <<< "$out" | cut -d' ' -f3- || true)
  if [ -z "$tps" ] || [ "${errs:-0}" != 0 ] || [ -z "$cpu" ]; then
    echo "$out" > "$work/fail-$name-$scenario.out"
    echo "$scenario $name fails errors:${errs:-?}" >> "$results"
    return
  fi
  # p50 and p95 from sysbench's latency histogram (ms, buckets ~1.8% wide) -> µs
  local pct; pct=$(awk '/^Latency histogram/ {h=1; next} h && /\|/ {v[++n]=$1; c[n]=$NF; t+=$NF} h && /^$/ && n {h=0}
    END {if (!t) {print "- -"; exit} a=0; p50=""; for (i=1;i<=n;i++) {a+=c[i]; if (p50=="" && a>=t*0.5) p50=v[i]; if (a>=t*0.95) {print p50*1000, v[i]*1000; exit}}}' <<< "$out")
  read -r machine idle sb proxy db <<< "$cpu"
  echo "$scenario $name $tps $pct $proxy $machine $idle $sb $db" >> "$results"
}

# storm NAME RATE -> appends "storm-RATE name JSON" to results (my_storm's line).
token() {
  AWS_ACCESS_KEY_ID=$KEY_ID AWS_SECRET_ACCESS_KEY=$SECRET_KEY python3 -c '
import boto3, sys
print(boto3.client("rds", region_name=sys.argv[1]).generate_db_auth_token(
    DBHostname="127.0.0.1", Port=int(sys.argv[2]), DBUsername="iam", Region=sys.argv[1]))' "$REGION" "$sp_port"
}
# The kernel's count of connections dropped because a listener's accept queue was full.
listen_overflows() {
  awk '/^TcpExt:/ {if (!h) {for (i = 1; i <= NF; i++) if ($i == "ListenOverflows") c = i; h = 1} else print $c}' /proc/net/netstat
}
storm() {
  local name=$1 rate=$2 out lo_before
  lo_before=$(listen_overflows)
  local rc=0
  if [ "$name" = direct ]; then
    MYSQL_PWD=app-password timeout --foreground $((STORM_SECONDS * 4 + 120)) "$STORM" 127.0.0.1 "$db_port" app shop \
      "$rate" "$STORM_SECONDS" tls native 0 "$db_pid" > "$work/storm.out" 2>&1 || rc=$?
  else
    # One token per run, reused by every connection of the run (a token lives 15 minutes; a
    # Lambda function reuses its own).
    local tok; tok=$(token) || rc=$?
    stop_if_interrupted "$rc"
    MYSQL_PWD=$tok timeout --foreground $((STORM_SECONDS * 4 + 120)) "$STORM" 127.0.0.1 "$sp_port" iam shop \
      "$rate" "$STORM_SECONDS" tls clear "$spillway_pid" "$db_pid" > "$work/storm.out" 2>&1 || rc=$?
  fi
  stop_if_interrupted "$rc"
  out=$(tail -1 "$work/storm.out")
  case "$out" in
    "{"*) out=$(python3 -c 'import json, sys; d = json.loads(sys.argv[1]); d["listen_overflows"] = int(sys.argv[2]); print(json.dumps(d))' \
            "$out" "$(( $(listen_overflows) - lo_before ))") ;;
    *) out="{\"failed\": $(python3 -c 'import json,sys; print(json.dumps(sys.argv[1]))' "$out")}" ;;
  esac
  echo "storm-$rate $name $out" >> "$results"
}

# --- Memory of idle clients ----------------------------------------------------------------------
# First, on a fresh proxy: afterwards its heap would still hold what 1,000 sysbench clients freed,
# and idle clients would fit in it without the RSS moving.
if [ "$IDLE_CLIENTS" -gt 0 ]; then
say "holding $IDLE_CLIENTS idle clients on spillway"
before=$(rss_kb "$spillway_pid")
coproc IDLER { python3 bench/mysql_idle.py idle 127.0.0.1 "$sp_port" app --password app-password --clients "$IDLE_CLIENTS"; }
idler_pid=$IDLER_PID
line=""; read -r -t 600 line <&"${IDLER[0]}" || true
held=${line#ready }
during=$(rss_kb "$spillway_pid")
exec {IDLER[1]}>&-
idle_rc=0; wait "$idler_pid" 2>/dev/null || idle_rc=$?
stop_if_interrupted "$idle_rc"
echo "idle spillway ${held:-0} $before $during" >> "$results"
fi

targets=("direct $db_port 0" "spillway $sp_port $spillway_pid")
scenarios=()
[ "$SYSBENCH" = 0 ] || scenarios=(
  "point-1-text --threads=1 --db-ps-mode=disable"
  "point-50-text --threads=50 --db-ps-mode=disable"
  "point-50-prepared --threads=50 --db-ps-mode=auto"
  "point-1000-text --threads=1000 --db-ps-mode=disable"
  "point-1000-prepared --threads=1000 --db-ps-mode=auto"
)
for round in $(seq 1 "$ROUNDS"); do
  for sc in ${scenarios[@]+"${scenarios[@]}"}; do
    read -r scenario args <<< "$sc"
    # Alternate the order each round so neither target always runs first.
    for i in 0 1; do
      t=${targets[$(( (i + round) % 2 ))]}
      read -r name port pid <<< "$t"
      say "round $round: $scenario on $name"
      # shellcheck disable=SC2086
      run "$name" "$port" "$pid" "$scenario" $args
    done
  done
  for rate in $STORM_RATES; do
    for i in 0 1; do
      t=${targets[$(( (i + round) % 2 ))]}
      read -r name _ _ <<< "$t"
      say "round $round: storm at $rate/s on $name"
      storm "$name" "$rate"
    done
  done
done

# --- Profiles (PERF_DIR=dir): spillway under perf, outside the measured rounds -------------------
if [ -n "${PERF_DIR:-}" ]; then
  mkdir -p "$PERF_DIR"
  real_results=$results
  results="$work/profiled.txt"
  round=0
  profile() {
    local what=$1; shift
    perf record -F 2000 -g -o "$PERF_DIR/$what.data" -p "$spillway_pid" > /dev/null 2>&1 &
    perf_pid=$!
    "$@"
    kill -INT "$perf_pid" 2>/dev/null || true
    wait "$perf_pid" 2>/dev/null || true
    perf_pid=""
    perf report -i "$PERF_DIR/$what.data" --no-children --sort symbol --stdio 2>/dev/null | grep -E '^ +[0-9]' | head -40 > "$PERF_DIR/$what.top.txt" || true
  }
  if [ "$SYSBENCH" != 0 ]; then
    say "profiling spillway: point-50-text"
    profile point-50-text run spillway "$sp_port" "$spillway_pid" point-50-text --threads=50 --db-ps-mode=disable
    say "profiling spillway: point-1000-text"
    profile point-1000-text run spillway "$sp_port" "$spillway_pid" point-1000-text --threads=1000 --db-ps-mode=disable
  fi
  top_rate=${STORM_RATES##* }
  if [ -n "$top_rate" ]; then
    say "profiling spillway: storm at $top_rate/s"
    profile "storm-$top_rate" storm spillway "$top_rate"
  fi
  cp "$results" "$PERF_DIR/profiled-runs.txt" 2>/dev/null || true
  results=$real_results
fi

mkdir -p bench/results
report="bench/results/proxy-mysql-$(date -u +%Y%m%dT%H%MZ).md"
cp "$results" "${report%.md}.raw.txt"
python3 - "$results" "$DURATION" "$ROUNDS" "$(nproc)" "$max_conn" "$STORM_SECONDS" "$([ "${TLS_KEY:-rsa}" = ec ] && echo "ECDSA P-256" || echo "RSA-2048")" > "$report" <<'PY'
import json, statistics, sys
from collections import defaultdict
path, duration, rounds, cores, max_conn, storm_s, tls_key = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), sys.argv[5], sys.argv[6], sys.argv[7]
runs, storms, fails, idle = defaultdict(list), defaultdict(list), defaultdict(list), None
for line in open(path):
    f = line.split(None, 2)
    if f[0] == "idle":
        idle = [int(x or 0) for x in line.split()[2:5]]
    elif f[0].startswith("storm-"):
        storms[(f[0], f[1])].append(json.loads(f[2]))
    elif f[2].startswith("fails"):
        fails[(f[0], f[1])].append(f[2].split(None, 1)[1].strip() if len(f[2].split()) > 1 else "")
    else:
        runs[(f[0], f[1])].append(f[2].split())
def med(vals):
    nums = [float(v) for v in vals if v not in ("-", None)]
    return statistics.median(nums) if nums else None
def fmt(v):
    return "—" if v is None else (f"{v:,.0f}" if abs(v) >= 100 else f"{v:.1f}")
def ratio(a, b):
    return "—" if a is None or b is None or not b else f"{a / b:.2f}×"
FIELDS = ["tps", "p50", "p95", "proxy", "machine", "idle", "sysbench", "db"]
SCEN = ["point-1-text", "point-50-text", "point-50-prepared", "point-1000-text", "point-1000-prepared"]
row = {}
for s in SCEN:
    for t in ["direct", "spillway"]:
        ok = runs.get((s, t), [])
        row[(s, t)] = {k: med([r[i] for r in ok]) for i, k in enumerate(FIELDS)} if ok else None
def cell(s, t, k):
    r = row[(s, t)]
    if r is None:
        why = fails.get((s, t), ["?"])[0].replace("_", " ")
        return f"fails ({why[:60]})" if t == "direct" or k == "tps" else "—"
    return fmt(r[k])
print(f"# MySQL proxy benchmark ({rounds} interleaved rounds of {duration}s, medians, {cores} cores)\n")
print(f"MariaDB 10.11 (max_connections {max_conn}), spillway's proxy with a pool of 20, sysbench 1.0.20 oltp_point_select, 1 table of 10,000 rows.\n")
if runs or fails:
    print("| scenario | direct TPS | spillway TPS | spillway / direct | p50 µs (direct / spillway) | p95 µs (direct / spillway) | proxy CPU µs per query | machine CPU µs per query (direct / spillway) | sysbench µs | mariadbd µs (direct / spillway) | machine idle (direct / spillway) |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for s in SCEN:
        d, p = row[(s, "direct")], row[(s, "spillway")]
        g = lambda r, k: None if r is None else r[k]  # noqa: E731
        print(f"| {s} | {cell(s, 'direct', 'tps')} | {cell(s, 'spillway', 'tps')} | {ratio(g(p, 'tps'), g(d, 'tps'))} "
              f"| {fmt(g(d, 'p50'))} / {fmt(g(p, 'p50'))} | {fmt(g(d, 'p95'))} / {fmt(g(p, 'p95'))} | {fmt(g(p, 'proxy'))} "
              f"| {fmt(g(d, 'machine'))} / {fmt(g(p, 'machine'))} | {fmt(g(d, 'sysbench'))} / {fmt(g(p, 'sysbench'))} | {fmt(g(d, 'db'))} / {fmt(g(p, 'db'))} | {fmt(g(d, 'idle'))}% / {fmt(g(p, 'idle'))}% |")
    # Rounds pair up in file order: the added latency is the median of each round's difference
    # (one client is the noisiest scenario: whether both processes stay on a core decides it).
    dl, pl = runs.get(("point-1-text", "direct"), []), runs.get(("point-1-text", "spillway"), [])
    diffs = sorted(float(b[1]) - float(a[1]) for a, b in zip(dl, pl))
    if diffs:
        print(f"\nAdded p50 latency at 1 client (text protocol), median of the rounds' differences: **{statistics.median(diffs):.0f} µs** "
              f"(per round: {', '.join(f'{x:.0f}' for x in diffs)} µs; direct p50s {', '.join(a[1] for a in dl)}, spillway {', '.join(b[1] for b in pl)}).")
print(f"\n## Connect storm: a new connection per query, fixed rate, {storm_s}s per run (medians of the rounds; certificate {tls_key})\n")
print("direct = TLS + mysql_native_password to MariaDB; spillway = TLS + RDS IAM token (mysql_clear_password, one token reused by every connection) to the proxy. Each: one `SELECT id, k, c, pad FROM sbtest1 WHERE id IN (10 ids)`, COM_QUIT, close. Latency is connect to last row.\n")
print("| rate/s | target | achieved/s | ok | errors | p50 ms | p99 ms | client CPU ms/conn | proxy CPU ms/conn | mariadbd CPU ms/conn | machine CPU ms/conn (idle) | listen queue overflows | spillway / direct: achieved, mariadbd CPU per conn |")
print("|---|---|---|---|---|---|---|---|---|---|---|---|---|")
rates = sorted({int(k[0].split("-")[1]) for k in storms})
for rate in rates:
    ach, dbcpu = {}, {}
    for t in ["direct", "spillway"]:
        rs = [r for r in storms.get((f"storm-{rate}", t), []) if "failed" not in r]
        if not rs:
            why = [r.get("failed", "") for r in storms.get((f"storm-{rate}", t), [])]
            print(f"| {rate} | {t} | failed: {(why or ['?'])[0][:80]} | | | | | | | | | | |")
            continue
        m = lambda k: med([r[k] for r in rs])  # noqa: E731
        ach[t] = m("achieved")
        kinds = defaultdict(int)
        for r in rs:
            for k, v in r["error_kinds"].items():
                kinds[k] += v
        errs = f"{m('errors'):,.0f}" + (f" ({'; '.join(f'{k[:50]}: {v}' for k, v in list(kinds.items())[:2])}, all rounds)" if kinds else "")
        pid_cpu = [med([r["pid_cpu_ms"][i] for r in rs]) for i in range(2)]
        dbcpu[t] = pid_cpu[1]
        ratio_cell = f"{ratio(ach.get('spillway'), ach.get('direct'))}, {ratio(dbcpu.get('spillway'), dbcpu.get('direct'))}" if t == "spillway" else ""
        f2 = lambda v: "—" if v is None else f"{v:.2f}"  # noqa: E731
        n0 = lambda v: "—" if v is None else f"{v:,.0f}"  # noqa: E731
        print(f"| {rate} | {t} | {fmt(ach[t])} | {n0(m('ok'))} | {errs} | {f2(m('p50_ms'))} | {f2(m('p99_ms'))} "
              f"| {f2(m('client_cpu_ms'))} | {f2(pid_cpu[0]) if t == 'spillway' else '—'} | {f2(pid_cpu[1])} | {f2(m('machine_cpu_ms'))} ({m('machine_idle_pct'):.0f}%) | {n0(m('listen_overflows'))} | {ratio_cell} |")
if idle:
    held, before, during = idle
    print("\n## Idle clients\n")
    print("| idle logged-in clients (mysql_native_password, no TLS) | held | spillway RSS before | RSS holding them | delta | per client |")
    print("|---|---|---|---|---|---|")
    per = (during - before) / held if held else 0
    print(f"| spillway | {held:,} | {before/1024:.1f} MB | {during/1024:.1f} MB | {(during-before)/1024:.1f} MB | {per:.2f} KB |")
print("\nProxySQL: not compared (not packaged in Debian 12, and this machine cannot fetch it).")
PY
cat "$report"
say "written to $report"
