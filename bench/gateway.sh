#!/usr/bin/env bash
# The HTTP API gateway: the latency it adds at a fixed request rate, its CPU per 1,000
# requests, and its throughput against nginx serving a static response — spillway and its
# peers side by side in one run, in interleaved rounds whose order rotates, reported as medians
# and ratios (the machine is shared and noisy; absolute numbers drift, ratios within a run hold).
#
#   bench/gateway.sh                                   # 3 rounds, 10 s fixed-rate runs (~5 min)
#   ROUNDS=1 DURATION=5 MAX_DURATION=3 bench/gateway.sh   # quick look
#
# One stack (`spillway up`) with an HTTP API on 127.0.0.1: `GET /mock` (a mock integration
# answering "ok": the gateway alone) and `GET /fn` (a warm `lambda_http` function,
# tests/functions/rust-http, payload 2.0). Its peers:
#   nginx     Debian's nginx-light, `return 200 "ok";`, as many workers as cores, no access log
#   internal  the same function binary through `FunctionHost::invoke` with no HTTP, driven like
#             oha drives an HTTP target (bench/gateway_internal.rs): the baseline that the
#             function route's "added" latency is measured against
# Each round runs, every target in a rotating order:
#   fixed     oha -q RATE --latency-correction -c CONNECTIONS -z DURATION: nginx, mock, fn, internal
#   low       the same at LOW_RATE for fn and internal (0 skips it): on 2 cores the function
#             path itself saturates below 5,000 rps, and a saturated baseline measures queueing
#   max       oha -c CONNECTIONS -z MAX_DURATION (as fast as it can): nginx, mock, fn, internal
# CPU per 1,000 requests: user+system time from /proc/PID/stat of the server (spillway's
# process; nginx's master and workers; the internal driver's process, which is the function
# host plus a light driver) and, apart, of the function instances (the server's children).
# Results: a Markdown report on stdout and in bench/results/gateway-<time>.md.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib/system.sh
source bench/lib.sh

RATE="${RATE:-5000}"
LOW_RATE="${LOW_RATE:-1000}"
DURATION="${DURATION:-10}"
MAX_DURATION="${MAX_DURATION:-5}"
ROUNDS="${ROUNDS:-3}"
CONNECTIONS="${CONNECTIONS:-50}"
WARMUP="${WARMUP:-2}"
OHA_VERSION=1.16.0

ensure_packages nginx-light curl
ensure_rust
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/spillway/target}"
OHA="$SPILLWAY_TOOLS/bin/oha"
if [ "$("$OHA" --version 2>/dev/null || true)" != "oha $OHA_VERSION" ]; then
  say "installing oha $OHA_VERSION (the load generator) into $SPILLWAY_TOOLS"
  cargo install oha --version "$OHA_VERSION" --locked --root "$SPILLWAY_TOOLS" -q
fi
NGINX=$(command -v nginx || echo /usr/sbin/nginx)
TCK=$(getconf CLK_TCK)
repo=$PWD

work=$(mktemp -d /tmp/spillway-bench-gw.XXXXXX)
spillway_pid="" nginx_pid="" child_pid=""
# Every process this script starts, and the function instances under them, is stopped here:
# on success, on error and on Ctrl-C.
cleanup() {
  set +e
  local leftovers=""
  for p in $child_pid $spillway_pid; do
    leftovers="$leftovers $(pgrep -P "$p" 2>/dev/null | tr '\n' ' ')"
  done
  [ -n "$child_pid" ] && kill -TERM "$child_pid" 2>/dev/null
  [ -n "$spillway_pid" ] && kill -INT "$spillway_pid" 2>/dev/null
  [ -n "$nginx_pid" ] && kill -QUIT "$nginx_pid" 2>/dev/null
  for _ in $(seq 1 100); do
    local alive=""
    for p in $child_pid $spillway_pid $nginx_pid $leftovers; do
      kill -0 "$p" 2>/dev/null && alive="$alive $p"
    done
    [ -z "$alive" ] && break
    sleep 0.1
  done
  for p in $child_pid $spillway_pid $nginx_pid $leftovers; do kill -KILL "$p" 2>/dev/null; done
  wait 2>/dev/null
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# --- Builds ------------------------------------------------------------------------------------
say "building spillway and the test function (release)"
cargo build --release --locked -q -p spillway -p rust-http
SPILLWAY="$CARGO_TARGET_DIR/release/spillway"
# Both spillway and the internal driver run one copy of the function's binary, so neither
# starts cargo (or waits for another build's lock) and both run exactly the same code.
mkdir -p "$work/fn"
cp "$CARGO_TARGET_DIR/release/rust-http" "$work/fn/bootstrap"

# The internal driver is bench/gateway_internal.rs built as a throwaway package (outside the
# workspace, kept in the cache so it is not rebuilt every run) against the workspace's
# spillway-functions and lock file: nothing new is resolved.
say "building the internal-path driver (release)"
driver="$HOME/.cache/spillway/bench-gateway-internal"
mkdir -p "$driver"
cat > "$work/driver.toml" <<EOF
[package]
name = "spillway-bench-gateway-internal"
version = "0.0.0"
edition = "2024"
publish = false

[[bin]]
name = "gateway_internal"
path = "$repo/bench/gateway_internal.rs"

[dependencies]
spillway-functions = { path = "$repo/crates/spillway-functions" }
tokio = { version = "1", features = ["full"] }

[profile.release]
debug = "line-tables-only"

[workspace]
EOF
cmp -s "$work/driver.toml" "$driver/Cargo.toml" || cp "$work/driver.toml" "$driver/Cargo.toml"
cmp -s Cargo.lock "$driver/Cargo.lock" || cp Cargo.lock "$driver/Cargo.lock"
(cd "$driver" && { cargo build --release -q --offline 2>/dev/null || cargo build --release -q; })
INTERNAL="$CARGO_TARGET_DIR/release/gateway_internal"

# --- nginx -------------------------------------------------------------------------------------
nginx_port=$(free_port)
mkdir -p "$work/nginx"
cat > "$work/nginx/nginx.conf" <<EOF
worker_processes auto;
pid $work/nginx/nginx.pid;
error_log $work/nginx/error.log warn;
events { worker_connections 4096; }
http {
  access_log off;
  keepalive_requests 1000000;
  client_body_temp_path $work/nginx/body;
  proxy_temp_path $work/nginx/proxy;
  fastcgi_temp_path $work/nginx/fastcgi;
  uwsgi_temp_path $work/nginx/uwsgi;
  scgi_temp_path $work/nginx/scgi;
  server {
    listen 127.0.0.1:$nginx_port;
    location / { default_type text/plain; return 200 "ok"; }
  }
}
EOF
say "starting nginx"
"$NGINX" -e "$work/nginx/error.log" -p "$work/nginx" -c "$work/nginx/nginx.conf" -g 'daemon off;' \
  > "$work/nginx/out.log" 2>&1 &
nginx_pid=$!
for _ in $(seq 1 50); do curl -sf -o /dev/null "http://127.0.0.1:$nginx_port/" && break; sleep 0.1; done
[ "$(curl -sf "http://127.0.0.1:$nginx_port/")" = ok ] || { cat "$work/nginx/error.log"; die "nginx did not start"; }

# --- spillway ----------------------------------------------------------------------------------
api_port=$(free_port)
cat > "$work/spillway.toml" <<EOF
[stack]
name = "bench-gateway"
endpoint = "127.0.0.1:0"

# tests/functions/rust-http, built above; timeout as the internal driver's.
[functions.fn]
runtime = "provided"
code = "$work/fn"
keep_warm = "10m"
timeout = "10s"

[apis.bench]
listen = "127.0.0.1:$api_port"

[[apis.bench.routes]]
route = "GET /mock"
mock = { body = "ok" }

[[apis.bench.routes]]
route = "GET /fn"
function = "fn"
EOF
say "starting spillway"
(cd "$work" && exec "$SPILLWAY" --log warn up . > "$work/spillway.log" 2>&1) &
spillway_pid=$!
for _ in $(seq 1 600); do
  grep -q "spillway is up" "$work/spillway.log" 2>/dev/null && break
  kill -0 "$spillway_pid" 2>/dev/null || break
  sleep 0.2
done
grep -q "spillway is up" "$work/spillway.log" || { cat "$work/spillway.log"; die "spillway did not start"; }
base="http://127.0.0.1:$api_port"
[ "$(curl -sf "$base/mock")" = ok ] || die "GET /mock did not answer ok"
curl -sf "$base/fn" | grep -q '^hello world (GET /fn)' || die "GET /fn did not answer from the function"

# --- Measuring ---------------------------------------------------------------------------------
# utime + stime, in clock ticks, of the given processes (those that exist).
ticks() {
  local sum=0 p v
  for p in "$@"; do
    v=$(sed 's/^.*) //' "/proc/$p/stat" 2>/dev/null | awk '{print $12 + $13}') || v=0
    sum=$((sum + ${v:-0}))
  done
  echo "$sum"
}
children() { pgrep -P "$1" 2>/dev/null | tr '\n' ' ' || true; }
per_request_us() { python3 -c "import sys; t, tck, n = map(float, sys.argv[1:]); print(f'{t / tck * 1e6 / n:.1f}' if n else '-')" "$1" "$TCK" "$2"; }

results="$work/results.txt"
: > "$results"

# oha_run SCENARIO TARGET URL RATE SECONDS (RATE 0: as fast as it can) -> one line in results:
# scenario target round rps p50_ms p99_ms p999_ms server_cpu_us child_cpu_us ok errors
oha_run() {
  local scenario=$1 target=$2 url=$3 rate=$4 secs=$5
  local server
  if [ "$target" = nginx ]; then server=$nginx_pid; else server=$spillway_pid; fi
  local args=(--no-tui --output-format json -o "$work/oha.json" -z "${secs}s" -c "$CONNECTIONS")
  [ "$rate" != 0 ] && args+=(-q "$rate" --latency-correction)
  # nginx's workers are its children and part of the server; spillway's children are the
  # function instances, counted apart.
  local s0 c0 s1 c1
  if [ "$target" = nginx ]; then
    # shellcheck disable=SC2046
    s0=$(ticks "$server" $(children "$server")); c0=0
  else
    # shellcheck disable=SC2046
    s0=$(ticks "$server"); c0=$(ticks $(children "$server"))
  fi
  run_child "$OHA" "${args[@]}" "$url"
  if [ "$target" = nginx ]; then
    # shellcheck disable=SC2046
    s1=$(ticks "$server" $(children "$server")); c1=0
  else
    # shellcheck disable=SC2046
    s1=$(ticks "$server"); c1=$(ticks $(children "$server"))
  fi
  python3 - "$work/oha.json" > "$work/oha.line" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
codes = d.get("statusCodeDistribution", {})
ok = codes.get("200", 0)
# oha aborts the requests in flight at -z; those are not errors of the server.
errors = sum(n for e, n in d.get("errorDistribution", {}).items() if "deadline" not in e)
errors += sum(n for c, n in codes.items() if c != "200")
p = d["latencyPercentiles"]
elapsed = d["summary"]["total"] or 1
ms = lambda v: f"{v * 1000:.3f}" if v is not None else "-"
print(f'{ok / elapsed:.0f} {ms(p["p50"])} {ms(p["p99"])} {ms(p["p99.9"])} {ok} {errors}')
PY
  local rps p50 p99 p999 ok errors
  read -r rps p50 p99 p999 ok errors < "$work/oha.line"
  echo "$scenario $target $round $rps $p50 $p99 $p999 $(per_request_us $((s1 - s0)) "$ok") $(per_request_us $((c1 - c0)) "$ok") $ok $errors" >> "$results"
}

# internal_run SCENARIO RATE SECONDS -> one line in results, as oha_run's.
internal_run() {
  local scenario=$1 rate=$2 secs=$3
  run_child "$INTERNAL" "$work/fn" "$rate" "$secs" "$WARMUP" "$CONNECTIONS" > "$work/internal.line" 2> "$work/internal.err" \
    || { cat "$work/internal.err" >&2; die "the internal driver failed"; }
  local p50 p99 p999 ok failed st ct
  read -r p50 p99 p999 ok failed st ct < "$work/internal.line"
  local rps; rps=$(python3 -c "import sys; print(round(int(sys.argv[1]) / float(sys.argv[2])))" "$ok" "$secs")
  echo "$scenario internal $round $rps $p50 $p99 $p999 $(per_request_us "$st" "$ok") $(per_request_us "$ct" "$ok") $ok $failed" >> "$results"
}

measure() { # SCENARIO TARGET RATE SECONDS
  case $2 in
    nginx) oha_run "$1" nginx "http://127.0.0.1:$nginx_port/" "$3" "$4" ;;
    mock) oha_run "$1" mock "$base/mock" "$3" "$4" ;;
    fn) oha_run "$1" fn "$base/fn" "$3" "$4" ;;
    internal) internal_run "$1" "$3" "$4" ;;
  esac
}

# Rotates a list by N places, so no target always runs first or right after the same one.
rotate() { local n=$1; shift; local a=("$@") i; for i in "${!a[@]}"; do echo "${a[$(( (i + n) % ${#a[@]} ))]}"; done; }

say "warming up (${WARMUP}s at $RATE rps on each HTTP target; not measured)"
round=0
for url in "http://127.0.0.1:$nginx_port/" "$base/mock" "$base/fn"; do
  run_child "$OHA" --no-tui --output-format quiet -z "${WARMUP}s" -c "$CONNECTIONS" -q "$RATE" "$url"
done

started=$(date +%s)
load_before=$(cut -d' ' -f1-3 /proc/loadavg)
for round in $(seq 1 "$ROUNDS"); do
  say "round $round of $ROUNDS: $RATE rps, ${DURATION}s each"
  for t in $(rotate "$round" nginx mock fn internal); do measure fixed "$t" "$RATE" "$DURATION"; done
  if [ "$LOW_RATE" != 0 ]; then
    say "round $round of $ROUNDS: $LOW_RATE rps, ${DURATION}s each"
    for t in $(rotate "$round" fn internal); do measure low "$t" "$LOW_RATE" "$DURATION"; done
  fi
  say "round $round of $ROUNDS: as fast as possible, ${MAX_DURATION}s each"
  for t in $(rotate "$round" nginx mock fn internal); do measure max "$t" 0 "$MAX_DURATION"; done
done
elapsed=$(( $(date +%s) - started ))

# --- Report ------------------------------------------------------------------------------------
mkdir -p bench/results
report="bench/results/gateway-$(date -u +%Y%m%dT%H%MZ).md"
{
  echo "# Gateway benchmark, $(date -u +%Y-%m-%dT%H:%MZ)"
  echo
  echo "Machine: $(nproc) cores, load average $load_before before the rounds; spillway $(git rev-parse --short HEAD 2>/dev/null || echo '?') (release);"
  echo "$("$OHA" --version); $("$NGINX" -v 2>&1 | sed 's/^nginx version: //') ($(nproc) workers); $CONNECTIONS connections;"
  echo "$ROUNDS interleaved rounds of ${DURATION}s fixed-rate and ${MAX_DURATION}s as-fast-as-possible runs, ${elapsed}s in all; medians."
  echo
} > "$report"
python3 - "$results" "$RATE" "$LOW_RATE" >> "$report" <<'PY'
import statistics, sys
from collections import defaultdict
path, rate, low_rate = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
runs = defaultdict(dict)  # (scenario, target) -> round -> fields
for line in open(path):
    f = line.split()
    runs[(f[0], f[1])][int(f[2])] = f[3:]
FIELDS = {"rps": 0, "p50": 1, "p99": 2, "p999": 3, "cpu": 4, "child": 5, "ok": 6, "errors": 7}

def vals(scenario, target, field):
    out = {}
    for r, v in runs.get((scenario, target), {}).items():
        x = v[FIELDS[field]]
        if x not in ("-", "NaN", "nan"):
            out[r] = float(x)
    return out

def med(scenario, target, field):
    v = list(vals(scenario, target, field).values())
    return statistics.median(v) if v else None

def paired(scenario, a, b, field, op):
    """Median over rounds of op(a's value, b's value) from the same round."""
    va, vb = vals(scenario, a, field), vals(scenario, b, field)
    xs = [op(va[r], vb[r]) for r in va if r in vb and vb[r]]
    return statistics.median(xs) if xs else None

def fmt(v, digits=3):
    if v is None:
        return "-"
    return f"{v:,.0f}" if abs(v) >= 1000 else f"{v:.{digits}f}"

def us(v):
    return "-" if v is None else f"{v * 1000:+,.0f} µs"

LABELS = {
    "nginx": "nginx, static `return 200`",
    "mock": "spillway, mock route",
    "fn": "spillway, function route",
    "internal": "internal path (`FunctionHost::invoke`, no HTTP)",
}

def fixed_table(scenario, r, targets):
    print(f"## {r:,} requests/s, fixed rate (oha `-q {r} --latency-correction`)\n")
    print("| target | achieved rps | p50 ms | p99 ms | p99.9 ms | server CPU ms per 1,000 req | function instances CPU ms per 1,000 req | errors |")
    print("|---|---|---|---|---|---|---|---|")
    for t in targets:
        if (scenario, t) not in runs:
            continue
        err = sum(vals(scenario, t, "errors").values())
        child = med(scenario, t, "child") if t in ("fn", "internal") else None
        print(f"| {LABELS[t]} | {fmt(med(scenario, t, 'rps'), 0)} | {fmt(med(scenario, t, 'p50'))} | {fmt(med(scenario, t, 'p99'))} "
              f"| {fmt(med(scenario, t, 'p999'))} | {fmt(med(scenario, t, 'cpu'), 1)} | {fmt(child, 1)} | {err:.0f} |")
    print()
    sub = lambda a, b: a - b
    if (scenario, "internal") in runs:
        internal_rps = med(scenario, "internal", "rps") or 0
        saturated = internal_rps < 0.95 * r
        print(f"Added by the gateway around the function (function route minus internal path, paired by round): "
              f"p50 **{us(paired(scenario, 'fn', 'internal', 'p50', sub))}**, p99 **{us(paired(scenario, 'fn', 'internal', 'p99', sub))}**, "
              f"p99.9 {us(paired(scenario, 'fn', 'internal', 'p999', sub))}.")
        if saturated:
            print(f"\n**The internal path itself does not sustain {r:,} rps here** ({fmt(internal_rps, 0)} achieved): "
                  "both paths are queueing, so this difference is not the gateway's overhead.")
        print()
    if (scenario, "mock") in runs and (scenario, "nginx") in runs:
        print(f"Mock route over nginx (paired by round): p50 {us(paired(scenario, 'mock', 'nginx', 'p50', sub))}, "
              f"p99 {us(paired(scenario, 'mock', 'nginx', 'p99', sub))}, p99.9 {us(paired(scenario, 'mock', 'nginx', 'p999', sub))}; "
              f"server CPU per request {fmt(paired(scenario, 'mock', 'nginx', 'cpu', lambda a, b: a / b), 2)}× nginx's.\n")

fixed_table("fixed", rate, ["nginx", "mock", "fn", "internal"])
if low_rate:
    fixed_table("low", low_rate, ["fn", "internal"])

print("## As fast as possible (oha without `-q`)\n")
print("| target | requests/s | / nginx | server CPU ms per 1,000 req | function instances CPU ms per 1,000 req | p50 ms | p99 ms | errors |")
print("|---|---|---|---|---|---|---|---|")
for t in ["nginx", "mock", "fn", "internal"]:
    if ("max", t) not in runs:
        continue
    ratio = paired("max", t, "nginx", "rps", lambda a, b: a / b)
    err = sum(vals("max", t, "errors").values())
    child = med("max", t, "child") if t in ("fn", "internal") else None
    print(f"| {LABELS[t]} | {fmt(med('max', t, 'rps'), 0)} | {fmt(ratio, 2)}× | {fmt(med('max', t, 'cpu'), 1)} | {fmt(child, 1)} "
          f"| {fmt(med('max', t, 'p50'))} | {fmt(med('max', t, 'p99'))} | {err:.0f} |")
print()
print(f"Throughput, mock route / nginx (paired by round): **{fmt(paired('max', 'mock', 'nginx', 'rps', lambda a, b: a / b), 2)}×**; "
      f"function route / internal path: {fmt(paired('max', 'fn', 'internal', 'rps', lambda a, b: a / b), 2)}×.\n")

print("## Every run\n")
print("| scenario | target | round | rps | p50 ms | p99 ms | p99.9 ms | server CPU ms/1k | instances CPU ms/1k | ok | errors |")
print("|---|---|---|---|---|---|---|---|---|---|---|")
for line in open(path):
    print("| " + " | ".join(line.split()) + " |")
PY
cat "$report"
say "written to $report"
