#!/usr/bin/env bash
# The queue's storage engines compared, for the choice of the embedded default: the same
# QueueService over redb (the default), SQLite (rusqlite, bundled, WAL, synchronous=FULL) and
# fjall (PersistMode::SyncAll), each from crates/spillway-queue/examples/store_bench (built with
# the crate's `bench-engines` feature), one process per engine and round, engines in a rotating
# order, every commit fsync'd, on the disk of the work directory (/tmp, as a stack's .spillway).
#
#   bench/queue-store.sh                        # 1 round, 20,000 sends, 100,000 and 1,000,000 waiting
#   ROUNDS=3 bench/queue-store.sh
#   QUICK=1 bench/queue-store.sh                # 5,000 sends, 20,000 and 100,000 waiting
#
# Results: a Markdown report on stdout and in bench/results/queue-store-<time>.md.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib/system.sh

if [ -n "${QUICK:-}" ]; then
  : "${SENDS:=5000}" "${BACKLOG:=20000}" "${BIG:=100000}"
fi
ROUNDS="${ROUNDS:-1}"
SENDS="${SENDS:-20000}"
BACKLOG="${BACKLOG:-100000}"
BIG="${BIG:-1000000}"
ENGINES="${ENGINES:-redb sqlite fjall}"

ensure_rust
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/spillway/target}"
say "building store_bench with every engine (release)"
cargo build --release -q -p spillway-queue --features bench-engines --example store_bench
BENCH="$CARGO_TARGET_DIR/release/examples/store_bench"

work=$(mktemp -d /tmp/spillway-bench-store.XXXXXX)
trap 'rm -rf "$work"' EXIT
results="$work/results.txt"
: > "$results"
rotate() { local n=$1; shift; local a=("$@") i; for i in "${!a[@]}"; do echo "${a[$(( (i + n) % ${#a[@]} ))]}"; done; }
read -ra engines <<< "$ENGINES"

started=$(date +%s)
load_before=$(cut -d' ' -f1-3 /proc/loadavg)
for round in $(seq 1 "$ROUNDS"); do
  for engine in $(rotate "$round" "${engines[@]}"); do
    say "round $round of $ROUNDS: $engine"
    dir="$work/$engine-$round"
    "$BENCH" "$engine" "$dir" "$SENDS" "$BACKLOG" "$BIG" > "$work/out.txt" \
      || { cat "$work/out.txt"; die "store_bench $engine failed"; }
    # Each line is `name value unit`; its maximum RSS comes from the kernel, not the bench.
    while read -r name value _; do echo "$engine $round $name $value" >> "$results"; done < "$work/out.txt"
    rm -rf "$dir"
  done
done
elapsed=$(( $(date +%s) - started ))

mkdir -p bench/results
report="bench/results/queue-store-$(date -u +%Y%m%dT%H%MZ).md"
{
  echo "# Queue storage engines, $(date -u +%Y-%m-%dT%H:%MZ)"
  echo
  echo "Machine: $(nproc) cores, load average $load_before before the rounds; spillway $(git rev-parse --short HEAD 2>/dev/null || echo '?'), release build;"
  echo "$ROUNDS round(s), engines in rotating order, one process each; $SENDS sends, $BACKLOG and $BIG waiting; ${elapsed}s in all; medians."
  echo
} > "$report"
python3 - "$results" "$BIG" >> "$report" <<'PY'
import statistics, sys
from collections import defaultdict
path, big = sys.argv[1], int(sys.argv[2])
v = defaultdict(list)
engines = []
for line in open(path):
    e, r, name, value = line.split()
    v[(e, name)].append(float(value))
    if e not in engines:
        engines.append(e)
med = lambda e, n: statistics.median(v[(e, n)]) if v[(e, n)] else None
fmt = lambda x: "-" if x is None else f"{x:,.0f}"
cols = [("send_batch1", "durable send, 32 senders, 1 msg/call, msg/s"),
        ("send_batch10", "durable send, 32 senders, batches of 10, msg/s"),
        ("receive_delete_backlog", "receive(10)+delete, 4 consumers, 100k waiting, msg/s"),
        ("receive_delete_empty", "receive(10)+delete, near-empty queue, msg/s"),
        ("receive_delete_1m", f"receive(10)+delete, {big:,} waiting, msg/s"),
        ("fill_big_batch10", f"filling {big:,}, batches of 10, msg/s"),
        ("rss_peak", "peak RSS, MiB"),
        ("disk", f"on disk with {big:,} waiting, MiB")]
print("| measure | " + " | ".join(engines) + " |")
print("|---|" + "---|" * len(engines))
for key, label in cols:
    print(f"| {label} | " + " | ".join(fmt(med(e, key)) for e in engines) + " |")
ratio = lambda e: (med(e, "receive_delete_1m") or 0) / (med(e, "receive_delete_empty") or 1)
print("| big backlog / near-empty | " + " | ".join(f"{ratio(e):.2f}" for e in engines) + " |")
if "redb" in engines:
    print("\nOver redb (medians' ratio):\n")
    print("| measure | " + " | ".join(e for e in engines if e != "redb") + " |")
    print("|---|" + "---|" * (len(engines) - 1))
    for key, label in cols[:6]:
        print(f"| {label} | " + " | ".join(f"{(med(e, key) or 0) / (med('redb', key) or 1):.2f}×" for e in engines if e != "redb") + " |")
PY
cat "$report"
say "written to $report"
