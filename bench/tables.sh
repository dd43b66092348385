#!/usr/bin/env bash
# The tables: spillway's DynamoDB (durable embedded store) against MiniStack and moto server
# (PyPI) and dynalite (npm), side by side in one run, in interleaved rounds whose order
# rotates, reported as medians and ratios (the machine is shared and noisy; ratios within a
# run hold).
#
#   bench/tables.sh                                   # 3 rounds, 10 s runs, 1,000,000-item table
#   QUICK=1 bench/tables.sh                           # 1 round, 3 s runs, 100,000-item table
#   TARGETS="dynalite moto" DURATION=3 bench/tables.sh  # peers only (no spillway build)
#   ROUNDS=2 RATE=1000 BIG=200000 BIG_TARGETS="spillway dynalite" bench/tables.sh
#
# The load generator is crates/spillway-tables/examples/tables_load.rs (release build): SigV4
# signed JSON 1.0 requests over HTTP/1.1 keep-alive connections, one JSON line per run with its
# own CPU time. Every target gets the same tables: `small` (SMALL items, partitions of 100),
# `big` (BIG items; spillway and BIG_TARGETS only: loading a million items into a peer that
# writes a few hundred a second would take most of an hour) and `writes` (PutItem's). Each
# round runs, per target in a rotating order:
#   put-max     CONC workers, PutItem back to back, DURATION s
#   put-rate    PutItem at a fixed RATE/s (open model: latency from each request's scheduled
#               time, so a target that falls behind shows its queue)
#   get-max, get-rate        GetItem of a random item of `small`
#   query-max, query-rate    Query pk = :p, Limit 100, of a random partition of `small`, at
#                            QUERY_RATE/s for the fixed-rate run
#   query-big-max, query-big-rate, get-big-rate (spillway and BIG_TARGETS) the same on `big`
# Durability: spillway answers a write after fsync (group commit); MiniStack, moto and dynalite
# keep tables in memory (dynalite runs without --path, its LevelDB in memory).
# Results: a Markdown report on stdout and in bench/results/tables-<time>.md.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib/system.sh
source bench/lib.sh

if [ -n "${QUICK:-}" ]; then
  : "${ROUNDS:=1}" "${DURATION:=3}" "${BIG:=100000}"
fi
ROUNDS="${ROUNDS:-3}"
DURATION="${DURATION:-10}"
CONC="${CONC:-16}"
RATE="${RATE:-500}"
QUERY_RATE="${QUERY_RATE:-100}"
CONNECTIONS="${CONNECTIONS:-64}"
# The generator's runtime threads: 1 leaves the other core to the target; raise it if a run
# reports the generator near 100 % of a core (cpu_pct in its line).
GEN_THREADS="${GEN_THREADS:-1}"
SMALL="${SMALL:-1000}"
BIG="${BIG:-1000000}"
BIG_TARGETS="${BIG_TARGETS:-spillway}"
WARMUP="${WARMUP:-1}"
TARGETS="${TARGETS:-spillway ministack moto dynalite}"
MINISTACK_VERSION=1.5.33
MOTO_VERSION=5.2.5
DYNALITE_VERSION=4.0.0

has() { [[ " $TARGETS " == *" $1 "* ]]; }
ensure_rust
if has dynalite; then ensure_node; fi
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/spillway/target}"
TCK=$(getconf CLK_TCK)
cache="$HOME/.cache/spillway/bench-tables"
mkdir -p "$cache"

work=$(mktemp -d /tmp/spillway-bench-tables.XXXXXX)
declare -A pid endpoint version
child_pid=""
cleanup() {
  set +e
  [ -n "$child_pid" ] && kill -TERM "$child_pid" 2>/dev/null
  local p
  for t in "${!pid[@]}"; do
    p=${pid[$t]}
    if [ "$t" = spillway ]; then kill -INT "$p" 2>/dev/null; else kill -TERM "$p" 2>/dev/null; fi
  done
  for _ in $(seq 1 100); do
    local alive=""
    for p in $child_pid "${pid[@]}"; do kill -0 "$p" 2>/dev/null && alive="$alive $p"; done
    [ -z "$alive" ] && break
    sleep 0.1
  done
  for p in $child_pid "${pid[@]}"; do kill -KILL "$p" 2>/dev/null; done
  wait 2>/dev/null
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# --- Builds and peers --------------------------------------------------------------------------
if has spillway; then
  say "building spillway (release)"
  cargo build --release --locked -q -p spillway
  SPILLWAY="$CARGO_TARGET_DIR/release/spillway"
fi
say "building the load generator (release)"
cargo build --release --locked -q -p spillway-tables --example tables_load
LOAD="$CARGO_TARGET_DIR/release/examples/tables_load"

venv="$cache/venv"
if has ministack || has moto; then
  if ! "$venv/bin/python" -c "import ministack, moto" 2>/dev/null; then
    say "installing ministack $MINISTACK_VERSION and moto[server] $MOTO_VERSION into $venv"
    python3 -m venv "$venv"
    "$venv/bin/pip" install -q "ministack==$MINISTACK_VERSION" "moto[server]==$MOTO_VERSION" \
      || { say "pip install failed: leaving out MiniStack and moto"; TARGETS=${TARGETS//ministack/}; TARGETS=${TARGETS//moto/}; }
  fi
fi
dynalite_cli="$cache/dynalite/node_modules/dynalite/cli.js"
if has dynalite && [ ! -f "$dynalite_cli" ]; then
  say "installing dynalite $DYNALITE_VERSION into $cache/dynalite"
  mkdir -p "$cache/dynalite"
  (cd "$cache/dynalite" && { [ -f package.json ] || npm init -y >/dev/null; } \
    && npm install --no-audit --no-fund --silent "dynalite@$DYNALITE_VERSION") \
    || { say "npm install failed: leaving out dynalite"; TARGETS=${TARGETS//dynalite/}; }
fi

# --- Measuring helpers -------------------------------------------------------------------------
ticks() { # utime + stime of a process and its children so far, in clock ticks
  local p=$1 v
  v=$(sed 's/^.*) //' "/proc/$p/stat" 2>/dev/null | awk '{print $12 + $13 + $14 + $15}') || v=0
  echo "${v:-0}"
}
busy() { awk '/^cpu /{print $2+$3+$4+$7+$8, $2+$3+$4+$5+$6+$7+$8}' /proc/stat; }

results="$work/results.txt"
: > "$results"
# gen SCENARIO TARGET MODE ARGS... -> one line in $results: scenario target round server_ms
# busy_pct followed by the generator's JSON; server_ms is the target process's CPU over the
# run, busy_pct the whole machine's.
gen() {
  local scenario=$1 target=$2; shift 2
  local p=${pid[$target]} s0 s1 b0 t0 b1 t1 out
  s0=$(ticks "$p")
  read -r b0 t0 < <(busy)
  out=$(run_child "$LOAD" "$@" --endpoint "${endpoint[$target]}" --threads "$GEN_THREADS" 2> "$work/gen.err") \
    || { cat "$work/gen.err" >&2; die "$scenario on $target failed"; }
  read -r b1 t1 < <(busy)
  s1=$(ticks "$p")
  [ -s "$work/gen.err" ] && sed "s/^/  $target $scenario: /" "$work/gen.err" | head -3 >&2
  echo "$scenario $target $round $(( (s1 - s0) * 1000 / TCK )) $(( (b1 - b0) * 100 / (t1 - t0 + 1) )) $out" >> "$results"
}

# --- Targets -----------------------------------------------------------------------------------
if has spillway; then
  sp_port=$(free_port)
  mkdir -p "$work/spillway"
  cat > "$work/spillway/spillway.toml" <<EOF
[stack]
name = "bench-tables"
endpoint = "127.0.0.1:$sp_port"
account = "123456789012"

[users.bench]
access_key_id = "AKIASPILLWAYBENCH001"
secret_access_key = "YmVuY2gtc2VjcmV0LWtleS0wMTIzNDU2Nzg5YWJjZA"
policies = [{ allow = ["dynamodb:*"], resources = ["*"] }]

[tables.small]
hash_key = { name = "pk", type = "S" }
range_key = { name = "sk", type = "S" }

[tables.big]
hash_key = { name = "pk", type = "S" }
range_key = { name = "sk", type = "S" }

[tables.writes]
hash_key = { name = "pk", type = "S" }
range_key = { name = "sk", type = "S" }
EOF
  say "starting spillway"
  (cd "$work/spillway" && exec "$SPILLWAY" --log warn up . > "$work/spillway.log" 2>&1) &
  pid[spillway]=$!
  for _ in $(seq 1 600); do
    grep -q "spillway is up" "$work/spillway.log" 2>/dev/null && break
    kill -0 "${pid[spillway]}" 2>/dev/null || break
    sleep 0.2
  done
  grep -q "spillway is up" "$work/spillway.log" || { cat "$work/spillway.log"; die "spillway did not start"; }
  endpoint[spillway]="http://127.0.0.1:$sp_port"
  version[spillway]="$(git rev-parse --short HEAD 2>/dev/null || echo '?') (release, fsync per commit)"
fi
if has ministack; then
  say "starting MiniStack $MINISTACK_VERSION"
  port=$(free_port)
  mkdir -p "$work/ministack"
  (cd "$work/ministack" && BIND_HOST=127.0.0.1 GATEWAY_PORT=$port LAMBDA_EXECUTOR=local exec "$venv/bin/ministack" > "$work/ministack.log" 2>&1) &
  pid[ministack]=$!
  wait_http "http://127.0.0.1:$port/" "${pid[ministack]}" || { cat "$work/ministack.log"; die "MiniStack did not start"; }
  endpoint[ministack]="http://127.0.0.1:$port"
  version[ministack]="$MINISTACK_VERSION (in memory)"
fi
if has moto; then
  say "starting moto server $MOTO_VERSION"
  port=$(free_port)
  "$venv/bin/moto_server" -H 127.0.0.1 -p "$port" > "$work/moto.log" 2>&1 &
  pid[moto]=$!
  wait_http "http://127.0.0.1:$port/" "${pid[moto]}" || { cat "$work/moto.log"; die "moto did not start"; }
  endpoint[moto]="http://127.0.0.1:$port"
  version[moto]="$MOTO_VERSION (in memory)"
fi
if has dynalite; then
  say "starting dynalite $DYNALITE_VERSION"
  port=$(free_port)
  node "$dynalite_cli" --host 127.0.0.1 --port "$port" --createTableMs 0 > "$work/dynalite.log" 2>&1 &
  pid[dynalite]=$!
  wait_http "http://127.0.0.1:$port/" "${pid[dynalite]}" || { cat "$work/dynalite.log"; die "dynalite did not start"; }
  endpoint[dynalite]="http://127.0.0.1:$port"
  version[dynalite]="$DYNALITE_VERSION on Node.js $(node --version) (in memory)"
fi
read -ra targets <<< "$TARGETS"
big_targets=()
for t in "${targets[@]}"; do [[ " $BIG_TARGETS " == *" $t "* ]] && big_targets+=("$t"); done
is_big() { [[ " ${big_targets[*]} " == *" $1 "* ]]; }

# --- Tables, loaded once -----------------------------------------------------------------------
round=0
declare -A rss_small rss_big
for t in "${targets[@]}"; do
  for table in small writes $(is_big "$t" && echo big); do
    [ "$t" = spillway ] || "$LOAD" create --endpoint "${endpoint[$t]}" --table "$table" > /dev/null
  done
  say "$t: loading $SMALL items into small"
  gen load-small "$t" load --table small --items "$SMALL" --concurrency "$CONC"
  rss_small[$t]=$(rss_mb "${pid[$t]}")
  if is_big "$t"; then
    say "$t: loading $BIG items into big"
    gen load-big "$t" load --table big --items "$BIG" --concurrency "$CONC"
    rss_big[$t]=$(rss_mb "${pid[$t]}")
  fi
done
# One unmeasured second of each request kind per target and table: JIT-compiled peers (Node.js)
# and caches settle before the first measured run, so the first run of a round is not the slow one.
for t in "${targets[@]}"; do
  for table in small $(is_big "$t" && echo big); do
    items=$SMALL; [ "$table" = big ] && items=$BIG
    for op in get query; do
      "$LOAD" "$op" --endpoint "${endpoint[$t]}" --table "$table" --items "$items" --concurrency "$CONC" --duration "$WARMUP" > /dev/null
    done
  done
  "$LOAD" put --endpoint "${endpoint[$t]}" --table writes --concurrency "$CONC" --duration "$WARMUP" > /dev/null
done
[ -n "${pid[spillway]:-}" ] && spillway_disk=$(du -sm "$work/spillway/.spillway" | cut -f1)

# --- Rounds ------------------------------------------------------------------------------------
rotate() { local n=$1; shift; local a=("$@") i; for i in "${!a[@]}"; do echo "${a[$(( (i + n) % ${#a[@]} ))]}"; done; }
started=$(date +%s)
load_before=$(cut -d' ' -f1-3 /proc/loadavg)
for round in $(seq 1 "$ROUNDS"); do
  for t in $(rotate "$round" "${targets[@]}"); do
    say "round $round of $ROUNDS: $t"
    closed=(--concurrency "$CONC" --duration "$DURATION")
    open=(--connections "$CONNECTIONS" --duration "$DURATION")
    gen put-max "$t" put --table writes "${closed[@]}"
    gen put-rate "$t" put --table writes --rate "$RATE" "${open[@]}"
    gen get-max "$t" get --table small --items "$SMALL" "${closed[@]}"
    gen get-rate "$t" get --table small --items "$SMALL" --rate "$RATE" "${open[@]}"
    is_big "$t" && gen get-big-rate "$t" get --table big --items "$BIG" --rate "$RATE" "${open[@]}"
    # small and big side by side, in an order that alternates by round: runs later in a round
    # tend to be faster (peers' JITs, caches), which must not pass for a size effect.
    sizes=(small); is_big "$t" && { [ $((round % 2)) = 1 ] && sizes=(small big) || sizes=(big small); }
    for kind in max rate; do
      for size in "${sizes[@]}"; do
        name=query; items=$SMALL; [ "$size" = big ] && { name=query-big; items=$BIG; }
        if [ "$kind" = max ]; then
          gen "$name-max" "$t" query --table "$size" --items "$items" "${closed[@]}"
        else
          gen "$name-rate" "$t" query --table "$size" --items "$items" --rate "$QUERY_RATE" "${open[@]}"
        fi
      done
    done
  done
done
elapsed=$(( $(date +%s) - started ))

# --- Report ------------------------------------------------------------------------------------
mkdir -p bench/results
report="bench/results/tables-$(date -u +%Y%m%dT%H%MZ).md"
{
  echo "# Tables benchmark, $(date -u +%Y-%m-%dT%H:%MZ)"
  echo
  echo "Machine: $(nproc) cores, load average $load_before before the rounds. Targets:"
  for t in "${targets[@]}"; do echo "- $t ${version[$t]}"; done
  echo
  echo "$ROUNDS interleaved rounds of ${DURATION}s runs; closed model $CONC workers (one keep-alive connection each);"
  echo "open model $RATE req/s (Query $QUERY_RATE/s) over $CONNECTIONS connections, latency from each request's scheduled time;"
  echo "items ~250 bytes (pk, sk, a number, 200-byte string), partitions of 100; \`small\` $SMALL items, \`big\` $BIG items"
  echo "(loaded on: ${big_targets[*]:-none}); ${elapsed}s of rounds; medians."
  echo
} > "$report"
rss_args=""
for t in "${targets[@]}"; do rss_args="$rss_args $t=${rss_small[$t]:--}/${rss_big[$t]:--}"; done
python3 - "$results" "$RATE" "$QUERY_RATE" "$SMALL" "$BIG" "${spillway_disk:--}" "$rss_args" >> "$report" <<'PY'
import json, statistics, sys
from collections import defaultdict
path, rate, qrate, small, big, disk, rss_args = sys.argv[1:]
runs = defaultdict(dict)  # (scenario, target) -> round -> fields
for line in open(path):
    scenario, target, rnd, server_ms, busy, js = line.split(" ", 5)
    v = json.loads(js)
    v["server_ms"], v["busy_pct"] = float(server_ms), float(busy)
    runs[(scenario, target)][int(rnd)] = v
rss = dict(kv.split("=", 1) for kv in rss_args.split())

LABEL = {"spillway": "spillway (fsync'd)", "ministack": "MiniStack (memory)",
         "moto": "moto (memory)", "dynalite": "dynalite (memory)"}
targets = [t for t in LABEL if any(k[1] == t for k in runs)]

def vals(s, t, k):
    return {r: v[k] for r, v in runs.get((s, t), {}).items() if isinstance(v.get(k), (int, float))}

def med(s, t, k):
    v = list(vals(s, t, k).values())
    return statistics.median(v) if v else None

def paired(sa, a, sb, b, k):
    va, vb = vals(sa, a, k), vals(sb, b, k)
    xs = [va[r] / vb[r] for r in va if r in vb and vb[r]]
    return statistics.median(xs) if xs else None

def server_us(s, t):
    xs = [v["server_ms"] * 1000 / v["ok"] for v in runs.get((s, t), {}).values() if v.get("ok")]
    return statistics.median(xs) if xs else None

def total(s, t, k):
    return sum(int(v.get(k, 0)) for v in runs.get((s, t), {}).values())

def fmt(v, d=2):
    if v is None:
        return "-"
    return f"{v:,.0f}" if abs(v) >= 100 else f"{v:.{d}f}"

def ratio(v):
    return "-" if v is None else (f"{v:,.0f}×" if v >= 100 else f"{v:.2f}×")

for op, title in (("put", "PutItem"), ("get", "GetItem"), ("query", "Query, one partition of 100 items, Limit 100")):
    r = qrate if op == "query" else rate
    print(f"## {title}\n")
    print(f"| target | max req/s | p50 ms at max | server CPU µs/req | generator CPU µs/req, % of a core | machine busy % | "
          f"at {int(r):,}/s: achieved | p50 ms | p90 ms | p99 ms | max ms | generator's send lag p50 / p99 ms | unsent | errors | short answers |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    for t in targets:
        m, o = f"{op}-max", f"{op}-rate"
        errs = total(m, t, "errors") + total(o, t, "errors")
        short = total(m, t, "short") + total(o, t, "short")
        print(f"| {LABEL[t]} | {fmt(med(m, t, 'rate'))} | {fmt(med(m, t, 'p50_ms'), 3)} | {fmt(server_us(m, t), 1)} "
              f"| {fmt(med(m, t, 'cpu_us_per_req'), 1)}, {fmt(med(m, t, 'cpu_pct'))} | {fmt(med(m, t, 'busy_pct'))} "
              f"| {fmt(med(o, t, 'rate'))} | {fmt(med(o, t, 'p50_ms'), 3)} | {fmt(med(o, t, 'p90_ms'), 3)} "
              f"| {fmt(med(o, t, 'p99_ms'), 3)} | {fmt(med(o, t, 'max_ms'), 3)} "
              f"| {fmt(med(o, t, 'send_lag_p50_ms'), 3)} / {fmt(med(o, t, 'send_lag_p99_ms'), 3)} | {total(o, t, 'unsent')} | {errs} | {short} |")
    if "spillway" in targets and len(targets) > 1:
        print("\nspillway over each peer (paired by round, medians):\n")
        print("| peer | max req/s | p50 at fixed rate (peer / spillway) | p99 at fixed rate (peer / spillway) |")
        print("|---|---|---|---|")
        for t in targets:
            if t != "spillway":
                print(f"| {LABEL[t]} | {ratio(paired(op + '-max', 'spillway', op + '-max', t, 'rate'))} "
                      f"| {ratio(paired(op + '-rate', t, op + '-rate', 'spillway', 'p50_ms'))} "
                      f"| {ratio(paired(op + '-rate', t, op + '-rate', 'spillway', 'p99_ms'))} |")
    print()

print("Targets (the issue): PutItem ≥ 10× MiniStack's while durable; Query p50 under 1 ms. A fixed-rate run whose")
print("achieved rate is below the offered one fell behind: its percentiles include the queue (and `unsent`")
print("requests still waiting when the run's 2 s grace ended, at the time they had waited). The send lag is how late")
print("the generator started a request against its schedule (its ticker's wake-up, a free connection); it is part of")
print("the fixed-rate latencies, so a p50 near it says the target's own share is smaller.\n")

bt = [t for t in targets if (f"query-big-max", t) in runs]
print(f"## Query cost against table size: `small` ({int(small):,} items) vs `big` ({int(big):,} items)\n")
if bt:
    print(f"| target | load, items/s | Query max req/s small / big | big / small | Query p50 ms at {int(qrate):,}/s small / big "
          f"| p99 ms small / big | GetItem p99 ms at {int(rate):,}/s small / big | RSS MB small / big |")
    print("|---|---|---|---|---|---|---|---|")
    for t in bt:
        print(f"| {LABEL[t]} | {fmt(med('load-big', t, 'items_per_s'))} "
              f"| {fmt(med('query-max', t, 'rate'))} / {fmt(med('query-big-max', t, 'rate'))} "
              f"| {ratio(paired('query-big-max', t, 'query-max', t, 'rate'))} "
              f"| {fmt(med('query-rate', t, 'p50_ms'), 3)} / {fmt(med('query-big-rate', t, 'p50_ms'), 3)} "
              f"| {fmt(med('query-rate', t, 'p99_ms'), 3)} / {fmt(med('query-big-rate', t, 'p99_ms'), 3)} "
              f"| {fmt(med('get-rate', t, 'p99_ms'), 3)} / {fmt(med('get-big-rate', t, 'p99_ms'), 3)} | {rss.get(t, '-')} |")
    print(f"\nTarget: Query's cost independent of the table's size (big / small ≈ 1.00).", end="")
    if "spillway" in bt:
        print(f" spillway's store with both tables loaded: {disk} MB on disk.", end="")
    print()
left = [t for t in targets if t not in bt]
if left:
    est = []
    for t in left:
        r = med("load-small", t, "items_per_s")
        est.append(f"{LABEL[t]} (~{int(big) / r / 60:,.0f} min at its small-table load rate)" if r else LABEL[t])
    print(f"\nNot loaded with {int(big):,} items (left out of BIG_TARGETS, which includes a peer when asked): "
          + ", ".join(est) + ".")
print()

print("## Every run\n")
print("| scenario | target | round | server CPU ms | machine busy % | generator's line |")
print("|---|---|---|---|---|---|")
for line in open(path):
    scenario, target, rnd, server_ms, busy, js = line.split(" ", 5)
    print(f"| {scenario} | {target} | {rnd} | {server_ms} | {busy} | `{js.strip()}` |")
PY
cat "$report"
say "written to $report"
