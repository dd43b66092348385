#!/usr/bin/env bash
# PyMySQL's own test suite against MariaDB directly and through spillway's MySQL proxy.
#
#   scripts/driver-suites-mysql/pymysql.sh /path/to/spillway
#
# Prints one line per mode, `pymysql direct: N passed, M failed, K skipped` and `pymysql proxy:
# ...` (failed counts errors, skipped counts xfailed), then the tests that fail only through the
# proxy. Exits 0 whatever the tests do (the counts are the result); 2 if it could not run.
#
# Which PyMySQL: 0.10.1, the last release whose PyPI sdist ships its test suite (pymysql/tests,
# 167 tests). 1.0.3 to 1.1.2 ship only tests/test_auth.py (which needs MySQL 8's sha256 and
# caching_sha2 users), 1.0.2 none: their suites are on GitHub only. The 0.10.1 sdist lacks the
# suite's data file pymysql/tests/data/load_local_data.txt; it is written here (22749 lines
# of "a,b,", the row count test_load_local asserts). test_issues.py's `import imp` fallback is
# widened to ImportError so that it collects on Python >= 3.12.
#
# The suite reads pymysql/tests/databases.json: two connections, to test_pymysql and
# test_pymysql2, as the user $SUITE_USER (default `suite`, password `suite-pw`), which this
# script creates through a MariaDB administrator login (see common.sh) with ALL on both
# databases, SELECT on `mysql` and FILE. Direct: $MYSQL_HOST:$MYSQL_PORT (127.0.0.1:3306).
# Proxy: a temporary stack in $RESULTS/stack whose [databases.main] is that server as an
# external database (url = mysql://suite:suite-pw@.../test_pymysql) and whose proxy (transaction
# pooling) listens on a free port, logged in with the same user and password.
#
# Knobs: RESULTS (default a new /tmp/spillway-pymysql.XXXXXX, kept: junit XML, pytest and
# spillway logs), SUITES_CACHE ($HOME/.cache/spillway/suites), PYMYSQL_VERSION, TEST_TIMEOUT,
# SUITE_TIMEOUT, PYTEST_ARGS (e.g. "-k test_issue_114").
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
source "$here/common.sh"

BIN="${1:-}"
[ -n "$BIN" ] && [ -x "$BIN" ] || die "usage: $0 /path/to/spillway (an executable)"
BIN="$(cd "$(dirname "$BIN")" && pwd)/$(basename "$BIN")"
PYMYSQL_VERSION="${PYMYSQL_VERSION:-0.10.1}"
RESULTS="${RESULTS:-$(mktemp -d /tmp/spillway-pymysql.XXXXXX)}"
mkdir -p "$RESULTS"
trap stop_proxy EXIT

VENV="$CACHE/pymysql-venv"
venv "$VENV" "pytest==$PYTEST_VERSION" "pytest-timeout==$PYTEST_TIMEOUT_VERSION"
archive="$(sdist PyMySQL "$PYMYSQL_VERSION")"

# tree TARGET PORT : a fresh copy of the sdist pointed at 127.0.0.1:PORT.
tree() {
  local dir="$RESULTS/$1" port="$2"
  rm -rf "$dir"; mkdir -p "$dir"
  tar xzf "$archive" -C "$dir" --strip-components=1
  mkdir -p "$dir/pymysql/tests/data"
  python3 - "$dir" "$port" "$SUITE_USER" "$SUITE_PASSWORD" "$MYSQL_HOST" <<'PY'
import json, sys
d, port, user, pw, host = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4], sys.argv[5]
common = {"host": host, "port": port, "user": user, "passwd": pw}
json.dump([dict(common, db="test_pymysql", use_unicode=True, local_infile=True),
           dict(common, db="test_pymysql2")],
          open(f"{d}/pymysql/tests/databases.json", "w"))
with open(f"{d}/pymysql/tests/data/load_local_data.txt", "w") as f:
    for i in range(22749):
        f.write(f"{i},{2 * i},\n")
p = f"{d}/pymysql/tests/test_issues.py"
s = open(p).read().replace("except AttributeError:", "except (AttributeError, ImportError):", 1)
open(p, "w").write(s)
PY
}

run() {
  local target="$1"
  fresh_databases test_pymysql test_pymysql2
  say "pymysql $target"
  # shellcheck disable=SC2086
  (cd "$RESULTS/$target" && timeout -k 10 "$SUITE_TIMEOUT" "$VENV/bin/python" -m pytest -p no:cacheprovider \
     -q -rfE --timeout "$TEST_TIMEOUT" --junitxml "$RESULTS/$target.xml" ${PYTEST_ARGS:-} pymysql/tests \
     >"$RESULTS/$target.log" 2>&1) || true
}

setup_login test_pymysql test_pymysql2
tree direct "$MYSQL_PORT"
run direct

port="$(free_port)"
tree proxy "$port"
if start_proxy "$RESULTS/stack" "$BIN" test_pymysql "$port"; then
  run proxy
  stop_proxy
else
  say "the proxy did not start (see $RESULTS/stack/spillway.log)"
fi

report pymysql "$RESULTS"
echo "pymysql results: $RESULTS"
exit 0
