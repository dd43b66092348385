#!/usr/bin/env bash
# New connections per second through spillway's proxy with RDS IAM auth tokens versus passwords,
# in one run, interleaved, reported as ratios (report 004: RDS databases fall over above ~200 new
# IAM connections per second; spillway checks tokens itself and remembers verified ones).
#
#   bench/proxy-iam.sh                      # 3 rounds of 10 s
#   DURATION=5 ROUNDS=1 bench/proxy-iam.sh  # quick look
#
# pgbench -S -C -c 20 (a new connection for every transaction) against one proxy with three
# users: a SCRAM password user, an MD5 password user (behind a second proxy, since the password
# method is per proxy) and an IAM user whose token boto3 makes once (a function reuses its
# token for up to 15 minutes). Results: a markdown table on stdout and in bench/results/.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib/system.sh

DURATION="${DURATION:-10}"
ROUNDS="${ROUNDS:-3}"

ensure_packages postgresql postgresql-client postgresql-contrib
ensure_aws_clients
ensure_rust
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/spillway/target}"
say "building spillway and the token micro-benchmark (release)"
cargo build --release --locked -q -p spillway
cargo build --release --locked -q -p spillway-identity --example verify_tokens
SPILLWAY="$CARGO_TARGET_DIR/release/spillway"
ulimit -n "$(ulimit -Hn)"

work=$(mktemp -d /tmp/spillway-bench-iam.XXXXXX)
chmod 755 "$work"
pid=""
cleanup() {
  [ -n "$pid" ] && kill -INT "$pid" 2>/dev/null || true
  sleep 2
  rm -rf "$work"
}
trap cleanup EXIT

cat > "$work/spillway.toml" <<'EOF'
[stack]
name = "bench-iam"
endpoint = "127.0.0.1:0"

[databases.bench]
engine = "postgres"
max_connections = 100
tcp = true

[secrets.scram]
username = "scram_user"
password = "scram-password"

[secrets.md5]
username = "md5_user"
password = "md5-password"

[secrets.iam]
username = "iam_user"
password = "iam-user-server-password"

[users.signer]
access_key_id = "AKIASPILLWAYBENCH001"
secret_access_key = "YmVuY2gtc2VjcmV0LWtleS0wMTIzNDU2Nzg5YWJj"
policies = [{ allow = ["rds-db:connect"], resources = ["${proxies.main.dbuser_arn}/*"] }]

[proxies.main]
database = "bench"
listen = "127.0.0.1:0"
max_connections = 20
auth = [{ secret = "scram" }, { secret = "iam", iam = "required" }]

[proxies.md5]
database = "bench"
listen = "127.0.0.1:0"
max_connections = 20
auth = [{ secret = "md5", client_password_auth = "postgres-md5" }]
EOF
say "starting PostgreSQL and spillway"
"$SPILLWAY" --log warn up "$work" > "$work/spillway.out" 2>&1 &
pid=$!
for _ in $(seq 1 240); do grep -q "spillway is up" "$work/spillway.out" && break; sleep 0.5; done
grep -q "spillway is up" "$work/spillway.out" || { cat "$work/spillway.out"; die "spillway did not start"; }
db_port=$(cat "$work/.spillway/databases/bench/port")
main_port=$(grep "^proxies.main " "$work/spillway.out" | grep -oE '127\.0\.0\.1:[0-9]+' | head -1 | cut -d: -f2)
md5_port=$(grep "^proxies.md5 " "$work/spillway.out" | grep -oE '127\.0\.0\.1:[0-9]+' | head -1 | cut -d: -f2)
admin_pw=$(cat "$work/.spillway/databases/bench/admin-password")

say "pgbench -i -s 1"
PGPASSWORD="$admin_pw" pgbench -h 127.0.0.1 -p "$db_port" -U spillway -i -s 1 -q bench > "$work/init.log" 2>&1
PGPASSWORD="$admin_pw" psql -X -q -h 127.0.0.1 -p "$db_port" -U spillway bench \
  -c "GRANT SELECT ON ALL TABLES IN SCHEMA public TO scram_user, md5_user, iam_user"

token=$(AWS_ACCESS_KEY_ID=AKIASPILLWAYBENCH001 AWS_SECRET_ACCESS_KEY=YmVuY2gtc2VjcmV0LWtleS0wMTIzNDU2Nzg5YWJj \
  AWS_CONFIG_FILE=/dev/null AWS_SHARED_CREDENTIALS_FILE=/dev/null python3 -c "
import boto3
print(boto3.client('rds', region_name='us-east-1').generate_db_auth_token(DBHostname='127.0.0.1', Port=$main_port, DBUsername='iam_user'))")

cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat" 2>/dev/null || echo 0; }
results="$work/results.txt"
run() {
  local name=$1 port=$2 user=$3 password=$4
  local before; before=$(cpu_ticks "$pid")
  local out
  if ! out=$(PGPASSWORD="$password" timeout $((DURATION * 4 + 60)) pgbench -h 127.0.0.1 -p "$port" -U "$user" -S -C -c 20 -j 2 -T "$DURATION" bench 2>&1); then
    echo "$name fails -" >> "$results"; return
  fi
  local after; after=$(cpu_ticks "$pid")
  local tps; tps=$(grep -oE 'tps = [0-9.]+' <<< "$out" | head -1 | cut -d' ' -f3 || true)
  local tx; tx=$(grep -oE 'actually processed: [0-9]+' <<< "$out" | grep -oE '[0-9]+$' || echo 0)
  if [ -z "$tps" ] || [ "${tx:-0}" = 0 ]; then echo "$name fails -" >> "$results"; return; fi
  local cpu; cpu=$(python3 -c "print(round(($after-$before)*1e6/$(getconf CLK_TCK)/$tx, 1))")
  echo "$name $tps $cpu" >> "$results"
}
targets=("scram $main_port scram_user scram-password" "md5 $md5_port md5_user md5-password" "iam $main_port iam_user $token")
for round in $(seq 1 "$ROUNDS"); do
  for i in 0 1 2; do
    t=${targets[$(( (i + round) % 3 ))]}
    read -r name port user password <<< "$t"
    say "round $round: $name"
    run "$name" "$port" "$user" "$password"
  done
done

say "verifying 20,000 distinct tokens (no cache hits)"
uncached=$("$CARGO_TARGET_DIR/release/examples/verify_tokens" 20000)

mkdir -p bench/results
report="bench/results/proxy-iam-$(date -u +%Y%m%dT%H%MZ).md"
python3 - "$results" "$DURATION" "$ROUNDS" "$uncached" > "$report" <<'PY'
import statistics, sys
from collections import defaultdict
path, duration, rounds, uncached = sys.argv[1:5]
runs = defaultdict(list)
for line in open(path):
    f = line.split()
    if f[1] != "fails":
        runs[f[0]].append((float(f[1]), float(f[2])))
med = lambda xs: statistics.median(xs) if xs else None
print(f"# New connections per second: IAM tokens vs passwords ({rounds} interleaved rounds of {duration}s, medians)\n")
print("pgbench -S -C -c 20 -j 2 through spillway's proxy (pool of 20); every transaction logs in anew.\n")
print("| login | connections/s | / SCRAM password | / MD5 password | proxy CPU µs per login |")
print("|---|---|---|---|---|")
base = {k: med([r[0] for r in runs[k]]) for k in ("scram", "md5")}
for name, label in (("scram", "SCRAM-SHA-256 password"), ("md5", "MD5 password"), ("iam", "RDS IAM token (reused, as a function does)")):
    tps = med([r[0] for r in runs[name]])
    cpu = med([r[1] for r in runs[name]])
    if tps is None:
        print(f"| {label} | fails | - | - | - |"); continue
    rs = [f"{tps / base[k]:.2f}x" if base[k] else "-" for k in ("scram", "md5")]
    print(f"| {label} | {tps:,.0f} | {rs[0]} | {rs[1]} | {cpu:.0f} |")
_, n, us = uncached.split()
print(f"\nA token seen for the first time costs {float(us):.1f} µs of CPU to verify (signature, scope, expiry, "
      f"policy; {int(n):,} distinct tokens, one core): about {1e6 / float(us):,.0f} new tokens per second per core.")
PY
cat "$report"
say "written to $report"
