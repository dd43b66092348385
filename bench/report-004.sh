#!/usr/bin/env bash
# Report 004's load test on one machine: examples/tenants under `spillway loadtest`, the proxy
# stage (IAM through the proxy's reader endpoint, pooled connections to the two readers) against
# the no-proxy stage (a new TLS connection and login straight to the database per request), at
# a load where the database's `max_connections` and CPU decide.
#
#   bench/report-004.sh                                    # 200 tenants, 600 users, 2 min
#   USERS=300 RUN=60s MAX_CONNECTIONS=60 DB_CPU=25 bench/report-004.sh
#   QUICK=1 bench/report-004.sh                            # 20 tenants, 150 users, 40 s
#
# Knobs: TENANTS, USERS, SPAWN (users/s), RUN, WAIT (each user's pause, the report's 5s..9s is
# the default), MAX_CONNECTIONS (the MariaDB servers' max_connections), DB_CPU (percent of one
# core each database server may use, by a cgroup; 0 = no limit). Results: the summary in
# bench/results/report-004-STAMP.md (what docs/reports.md quotes, committed), and beside it a
# directory (git-ignored) with report.html, Locust's CSVs, the JSON and the functions' logs.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib/system.sh
source bench/lib.sh

if [[ "${QUICK:-0}" == 1 ]]; then
  : "${TENANTS:=20}" "${USERS:=150}" "${SPAWN:=15}" "${RUN:=40s}"
fi
TENANTS=${TENANTS:-200}
USERS=${USERS:-600}
SPAWN=${SPAWN:-20}
RUN=${RUN:-120s}
WAIT=${WAIT:-5s..9s}
MAX_CONNECTIONS=${MAX_CONNECTIONS:-100}
DB_CPU=${DB_CPU:-30}

export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/spillway/target}"
SPILLWAY="$CARGO_TARGET_DIR/release/spillway"
say "building spillway (release)"
cargo build --release -q -p spillway

stamp=$(date -u +%Y%m%dT%H%MZ)
out="bench/results/report-004-$stamp"
mkdir -p "$out"
work=$(mktemp -d /tmp/spillway-report-004.XXXXXX)
cgroups=()
spillway_pid=""
child_pid=""
cleanup() {
  [[ -n "$child_pid" ]] && kill "$child_pid" 2>/dev/null || true
  if [[ -n "$spillway_pid" ]]; then
    kill -INT "$spillway_pid" 2>/dev/null || true
    for _ in $(seq 1 300); do kill -0 "$spillway_pid" 2>/dev/null || break; sleep 0.1; done
  fi
  for cg in "${cgroups[@]}"; do rmdir "$cg" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# A copy of the example, without its state and installed modules, sized and limited.
say "preparing examples/tenants with $TENANTS tenants, max_connections = $MAX_CONNECTIONS"
tar -C examples/tenants --exclude=.spillway --exclude=node_modules -cf - . | tar -C "$work" -xf -
(cd "$work" && ./tenants "$TENANTS" > /dev/null)
sed -i "s/^max_connections = .*/max_connections = $MAX_CONNECTIONS/" "$work/spillway.toml"
grep -q "^max_connections = $MAX_CONNECTIONS\$" "$work/spillway.toml" \
  || { echo "could not set max_connections in the stack file" >&2; exit 1; }
# The tasks draw tenants 0..199, the template's 200: only as many as exist here.
sed -i "s/\"0\.\.199\"/\"0..$(( TENANTS - 1 ))\"/" "$work/loadtest.toml"
grep -q "\"0\.\.$(( TENANTS - 1 ))\"" "$work/loadtest.toml" \
  || { echo "could not set the tenant range in loadtest.toml" >&2; exit 1; }

say "spillway up (first start: tenants, readers, npm ci)"
started=$(date +%s)
(cd "$work" && exec "$SPILLWAY" up . > "$work/spillway.log" 2>&1) &
spillway_pid=$!
for _ in $(seq 1 3000); do
  grep -q "spillway is up" "$work/spillway.log" 2>/dev/null && break
  kill -0 "$spillway_pid" 2>/dev/null || { tail -30 "$work/spillway.log" >&2; exit 1; }
  sleep 0.2
done
grep -q "spillway is up" "$work/spillway.log" || { echo "spillway did not come up" >&2; exit 1; }
say "up in $(( $(date +%s) - started ))s"

api=$(awk -F'"' '/^listen = /{print $2; exit}' "$work/spillway.toml")
api=${api:-127.0.0.1:3000}
curl -sf "http://$api/proxy_stage?tenant=1" > /dev/null
curl -sf "http://$api/no_proxy_stage?tenant=1" > /dev/null

# The database's CPU share: each server (primary and readers) in a cgroup of its own with a CFS
# quota, as a small instance class is a small share of a host.
if [[ "$DB_CPU" != 0 ]]; then
  root=/sys/fs/cgroup/cpu
  [[ -w "$root" ]] || root=""
  for pidfile in "$work"/.spillway/databases/*/mariadbd.pid "$work"/.spillway/databases/*/readers/*/mariadbd.pid; do
    [[ -f "$pidfile" ]] || continue
    [[ -n "$root" ]] || { echo "no writable cgroup v1 cpu controller: DB_CPU=0 to run without" >&2; exit 1; }
    pid=$(head -1 "$pidfile")
    cg="$root/spillway-report-004-$pid"
    mkdir -p "$cg"
    echo 100000 > "$cg/cpu.cfs_period_us"
    echo $(( DB_CPU * 1000 )) > "$cg/cpu.cfs_quota_us"
    for t in /proc/"$pid"/task/*; do echo "${t##*/}" > "$cg/tasks" 2>/dev/null || true; done
    echo "$pid" > "$cg/cgroup.procs" 2>/dev/null || true
    cgroups+=("$cg")
  done
  say "database servers limited to ${DB_CPU}% of a core each (${#cgroups[@]} servers)"
fi

say "loadtest: $USERS users, spawn $SPAWN/s, wait $WAIT, $RUN"
rc=0
run_child "$SPILLWAY" loadtest -H "http://$api" -f "$work/loadtest.toml" -u "$USERS" -r "$SPAWN" \
  -t "$RUN" --wait "$WAIT" --compare proxy,no_proxy --stack "$work" \
  --html "$out/report.html" --csv "$out/run" --json --only-summary > "$out/run.json" || rc=$?
[[ -s "$out/run.json" ]] || { echo "the load test wrote no results (exit $rc)" >&2; exit 1; }

cp "$work/spillway.log" "$out/spillway.log"
cp -r "$work/.spillway/logs" "$out/logs" 2>/dev/null || true
for log in "$work"/.spillway/databases/main/*.err "$work"/.spillway/databases/main/*.log; do
  [[ -f "$log" ]] && cp "$log" "$out/" || true
done

python3 - "$out" "$TENANTS" "$USERS" "$SPAWN" "$RUN" "$WAIT" "$MAX_CONNECTIONS" "$DB_CPU" <<'EOF'
import collections, glob, json, os, re, sys
out, tenants, users, spawn, run, wait, maxc, dbcpu = sys.argv[1:]
r = json.load(open(os.path.join(out, "run.json")))
groups = {g["name"]: g for g in r["groups"]}
samples = r["samples"]
# The load is steady once every user runs: judge connections over the last two thirds.
steady = samples[len(samples) // 3:] or samples
def server_series(pred):
    conns, cpu = [], 0.0
    for s in steady:
        c = sum(x["connections"] or 0 for x in s["servers"] if pred(x["name"]))
        conns.append(c)
    for s in samples:
        cpu += sum((x["cpu_pct"] or 0) / 100.0 for x in s["servers"] if pred(x["name"]))
    return conns, cpu  # cpu: core-seconds (one sample a second)
readers = lambda n: ".readers." in n
primary = lambda n: ".readers." not in n
rc, rcpu = server_series(readers)
pc, pcpu = server_series(primary)
pool = [s["proxy_database_connections"] for s in steady if s["proxy_database_connections"] is not None]
fails = collections.Counter()
for f in r["failures"]:
    fails[(f["name"], f["error"])] += f["occurrences"]
# Why the direct path failed, from the function's log: the MySQL error names.
causes = collections.Counter()
for path in glob.glob(os.path.join(out, "logs", "**", "*"), recursive=True):
    if os.path.isfile(path):
        for line in open(path, errors="replace"):
            m = re.search(r"(ER_[A-Z_]+|ECONNRESET|ETIMEDOUT|PROTOCOL_[A-Z_]+|Too many connections|Access denied[^\n\"]*|handshake[^\n\"]*timed out)", line)
            if m:
                causes[m.group(1)[:80]] += 1
def g(name, key):
    return groups.get(name, {}).get(key, 0)
lines = []
lines.append(f"# Report 004 on one machine ({os.path.basename(out)})\n")
lines.append(f"{tenants} tenants, {users} users (spawn {spawn}/s), wait {wait}, run {run}; "
             f"MariaDB max_connections = {maxc}, each server limited to {dbcpu}% of a core "
             f"(0 = unlimited); the proxy stage reads through the proxy's reader endpoint "
             f"(two readers), the no-proxy stage connects to the primary.\n")
lines.append("| | proxy | no proxy |\n|---|---|---|")
lines.append(f"| requests | {g('proxy','requests')} | {g('no_proxy','requests')} |")
lines.append(f"| failures | {g('proxy','failures')} | {g('no_proxy','failures')} |")
for key, label in [("median_ms", "median ms"), ("avg_ms", "average ms")]:
    lines.append(f"| {label} | {g('proxy', key):.0f} | {g('no_proxy', key):.0f} |")
pp = groups.get("proxy", {}).get("percentiles_ms") or []
np_ = groups.get("no_proxy", {}).get("percentiles_ms") or []
lines.append(f"| database server connections, steady (min–max) | {min(rc, default=0)}–{max(rc, default=0)} (readers) | {min(pc, default=0)}–{max(pc, default=0)} (primary) |")
lines.append(f"| proxy's pooled connections, steady (min–max) | {min(pool, default=0):.0f}–{max(pool, default=0):.0f} | — |")
pr = max(g('proxy', 'requests'), 1); nr = max(g('no_proxy', 'requests'), 1)
lines.append(f"| database CPU, core-seconds | {rcpu:.1f} (readers) | {pcpu:.1f} (primary) |")
lines.append(f"| database CPU per request, ms | {1000*rcpu/pr:.2f} | {1000*pcpu/nr:.2f} |")
ratio = (pcpu / nr) / (rcpu / pr) if rcpu > 0 else float("inf")
lines.append(f"\nDatabase CPU per request, no proxy ÷ proxy: **{ratio:.1f}×**. "
             f"Generator: {r['generator']['cpu_seconds']:.1f} CPU s, peak {r['generator']['peak_cpu_pct']:.0f}%"
             f"{' (SATURATED)' if r['generator']['saturated'] else ''}.\n")
if fails:
    lines.append("Failures (loadtest):\n")
    for (name, err), n in fails.most_common(8):
        lines.append(f"- {name}: {n} × {err}")
if causes:
    lines.append("\nErrors in the function's log:\n")
    for c, n in causes.most_common(8):
        lines.append(f"- {n} × {c}")
text = "\n".join(lines) + "\n"
open(os.path.join(out, "summary.md"), "w").write(text)
print(text)
EOF
cp "$out/summary.md" "$out.md"
say "results: $out.md, and $out/report.html"
