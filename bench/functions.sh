#!/usr/bin/env bash
# Functions: cold start and warm invoke latency, and invocations per second at concurrency 1 and
# 10, for the quickstart's Rust function and a Node.js hello world — through the internal invoke
# path (no HTTP) and through the Invoke API — with MiniStack's Lambda (no Docker, local
# executor) measured in the same run by the same boto3 client.
#
#   bench/functions.sh                              # 5 s per measure, 10 cold samples
#   DURATION=2 COLD_SAMPLES=5 bench/functions.sh    # quick look
#
# Results: Markdown tables on stdout and in bench/results/functions-<time>.md.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib/system.sh

export DURATION="${DURATION:-5}"
export COLD_SAMPLES="${COLD_SAMPLES:-10}"

ensure_node
have curl || ensure_packages curl
ensure_aws_clients
ensure_rust
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/spillway/target}"
say "building spillway, the quickstart function and the internal-path driver (release)"
cargo build --release --locked -q -p spillway -p hello
cargo build --release --locked -q -p spillway-functions --example functions_bench
SPILLWAY="$CARGO_TARGET_DIR/release/spillway"

# The peer, in its own virtualenv so nothing of the machine's Python changes.
venv="$HOME/.cache/spillway/bench-venv"
peer=""
if [ -x "$venv/bin/ministack" ] || { python3 -m venv "$venv" >/dev/null 2>&1 && "$venv/bin/pip" install -q ministack==1.5.33 boto3; }; then
  peer="$venv/bin/ministack"
else
  say "MiniStack could not be installed; measuring spillway alone"
fi

work=$(mktemp -d /tmp/spillway-bench-fn.XXXXXX)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill -INT "$p" 2>/dev/null || true; done
  sleep 2
  rm -rf "$work"
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
port=$(free_port)
repo=$PWD
cat > "$work/spillway.toml" <<EOF2
[stack]
name = "bench-functions"
endpoint = "127.0.0.1:$port"

[users.bench]
access_key_id = "AKIABENCHFUNCTIONS01"
secret_access_key = "YmVuY2gtZnVuY3Rpb25zLXNlY3JldC0wMTIzNDU2"
policies = [{ allow = ["lambda:*"], resources = ["*"] }]

[functions.rust]
runtime = "provided"
code = "$repo/examples/quickstart/functions/hello"
reserved_concurrency = 10

[functions.rust-cold]
runtime = "provided"
code = "$repo/examples/quickstart/functions/hello"
keep_warm = "0s"

[functions.node]
runtime = "nodejs"
code = "$repo/bench/functions/node-hello"
handler = "index.handler"
reserved_concurrency = 10

[functions.node-cold]
runtime = "nodejs"
code = "$repo/bench/functions/node-hello"
handler = "index.handler"
keep_warm = "0s"
EOF2

stamp=$(date -u +%Y%m%dT%H%MZ)
out="bench/results/functions-$stamp.md"
mkdir -p bench/results
{
  echo "# Functions benchmark, $stamp"
  echo
  echo "Machine: $(nproc) cores; DURATION=${DURATION}s per measure; COLD_SAMPLES=$COLD_SAMPLES."
  echo
  echo "## Internal path (FunctionHost::invoke, no HTTP)"
  echo
} | tee "$out"

say "internal path"
"$CARGO_TARGET_DIR/release/examples/functions_bench" "$DURATION" "$COLD_SAMPLES" | tee -a "$out"

say "starting spillway"
(cd "$work" && exec "$SPILLWAY" up . >"$work/up.log" 2>&1) &
pids+=($!)
for _ in $(seq 1 600); do grep -q "spillway is up" "$work/up.log" 2>/dev/null && break; sleep 0.5; done
grep -q "spillway is up" "$work/up.log" || { cat "$work/up.log"; exit 1; }

if [ -n "$peer" ]; then
  say "starting MiniStack"
  mport=$(free_port)
  (cd "$work" && BIND_HOST=127.0.0.1 GATEWAY_PORT=$mport LAMBDA_EXECUTOR=local exec "$peer" >"$work/ministack.log" 2>&1) &
  pids+=($!)
  for _ in $(seq 1 120); do curl -s -o /dev/null "http://127.0.0.1:$mport/" && break; sleep 0.5; done
fi

{
  echo
  echo "## Through the Invoke API (boto3, one client for both)"
  echo
  echo "| server | function | measure | p50 | p99 | n |"
  echo "|---|---|---|---|---|---|"
} | tee -a "$out"
export AWS_ACCESS_KEY_ID=AKIABENCHFUNCTIONS01 AWS_SECRET_ACCESS_KEY=YmVuY2gtZnVuY3Rpb25zLXNlY3JldC0wMTIzNDU2
export AWS_DEFAULT_REGION=us-east-1 AWS_CONFIG_FILE=/dev/null AWS_SHARED_CREDENTIALS_FILE=/dev/null
python3 bench/functions_invoke.py spillway "http://127.0.0.1:$port" rust rust-cold | tee -a "$out"
python3 bench/functions_invoke.py spillway "http://127.0.0.1:$port" node node-cold | tee -a "$out"
if [ -n "$peer" ]; then
  "$venv/bin/python" bench/functions_invoke.py ministack "http://127.0.0.1:$mport" node node-cold --create | tee -a "$out" \
    || echo "| ministack | node | (failed: see its log) | | | |" | tee -a "$out"
fi
say "written to $out"
