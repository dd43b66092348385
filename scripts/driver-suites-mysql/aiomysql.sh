#!/usr/bin/env bash
# aiomysql's own test suite (asyncio MySQL driver built on PyMySQL's protocol code) against
# MariaDB directly and through spillway's MySQL proxy.
#
#   scripts/driver-suites-mysql/aiomysql.sh /path/to/spillway
#
# Prints `aiomysql direct: N passed, M failed, K skipped` and `aiomysql proxy: ...` (failed
# counts errors, skipped counts xfailed), then the tests that fail only through the proxy.
# Exits 0 whatever the tests do; 2 if it could not run.
#
# Which aiomysql: the 0.3.2 sdist on PyPI, which ships tests/ (conftest, fixtures, the
# SQLAlchemy-layer tests) — the registry artifact with a MySQL driver's integration suite that
# runs here without a C client library. Its pins for the run come from its requirements-dev.txt:
# PyMySQL 1.1.2, pytest 8.4.2, uvloop 0.22.1, SQLAlchemy 1.3.24. Every test runs twice, on the
# asyncio and the uvloop event loop.
#
# Its conftest logs in as root over TLS and asserts TLS; three small edits make the user, the
# password and TLS come from MYSQL_USER / MYSQL_PASSWORD / MYSQL_TLS=0 (nothing else changes).
# The session fixture drops and creates test_pymysql and test_pymysql2 itself, so the user
# ($SUITE_USER, default `suite` / `suite-pw`) gets ALL on those and on `bugtest`
# (test_issue_323), SELECT on `mysql`, FILE. Tests that need root or SUPER, or TLS on the
# server, fail in both modes (test_config_file_with_different_group, test_issue_792,
# test_drop_connection_if_timedout, test_tls_connect); test_load_warnings fails on MariaDB's
# warning text in both; test_connection_gone_away[uvloop] errors at teardown under uvloop
# directly, so only its asyncio variant compares.
#
# Proxy: a temporary stack whose [databases.main] is $MYSQL_HOST:$MYSQL_PORT/test_pymysql as an
# external database, proxy (transaction pooling) on a free port, same user and password.
# Knobs: RESULTS (default a new /tmp/spillway-aiomysql.XXXXXX, kept), SUITES_CACHE,
# AIOMYSQL_VERSION, TEST_TIMEOUT, SUITE_TIMEOUT, PYTEST_ARGS.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
source "$here/common.sh"

BIN="${1:-}"
[ -n "$BIN" ] && [ -x "$BIN" ] || die "usage: $0 /path/to/spillway (an executable)"
BIN="$(cd "$(dirname "$BIN")" && pwd)/$(basename "$BIN")"
AIOMYSQL_VERSION="${AIOMYSQL_VERSION:-0.3.2}"
RESULTS="${RESULTS:-$(mktemp -d /tmp/spillway-aiomysql.XXXXXX)}"
mkdir -p "$RESULTS"
trap stop_proxy EXIT

VENV="$CACHE/aiomysql-venv"
venv "$VENV" "pytest==$PYTEST_VERSION" "pytest-timeout==$PYTEST_TIMEOUT_VERSION" \
  "PyMySQL==1.1.2" "uvloop==0.22.1" "SQLAlchemy==1.3.24"
archive="$(sdist aiomysql "$AIOMYSQL_VERSION")"

src="$RESULTS/aiomysql"
rm -rf "$src"; mkdir -p "$src"
tar xzf "$archive" -C "$src" --strip-components=1
python3 - "$src/tests/conftest.py" <<'PY'
import sys
p = sys.argv[1]
s = open(p).read()
edits = [
    ("""        'user': 'root',
        'password': os.environ.get("MYSQL_ROOT_PASSWORD"),""",
     """        'user': os.environ.get("MYSQL_USER", 'root'),
        'password': os.environ.get("MYSQL_PASSWORD", os.environ.get("MYSQL_ROOT_PASSWORD")),"""),
    ("""        server_params["ssl"] = ctx""",
     """        if os.environ.get("MYSQL_TLS", "1") != "0":
            server_params["ssl"] = ctx"""),
    ("""            if not unix_socket:
                cursor.execute("SHOW STATUS LIKE 'Ssl_version%'")""",
     """            if not unix_socket and "ssl" in server_params:
                cursor.execute("SHOW STATUS LIKE 'Ssl_version%'")"""),
]
for old, new in edits:
    if old not in s:
        sys.exit(f"conftest.py: cannot find {old!r}")
    s = s.replace(old, new, 1)
open(p, "w").write(s)
PY

run() {
  local target="$1" port="$2"
  fresh_databases test_pymysql test_pymysql2 bugtest
  say "aiomysql $target"
  # shellcheck disable=SC2086
  (cd "$src" && MYSQL_USER="$SUITE_USER" MYSQL_PASSWORD="$SUITE_PASSWORD" MYSQL_TLS=0 PYTHONPATH="$src" \
     timeout -k 10 "$SUITE_TIMEOUT" "$VENV/bin/python" -m pytest -p no:cacheprovider -q -rfE -W ignore \
     --timeout "$TEST_TIMEOUT" --mysql-address "$target=$MYSQL_HOST:$port" \
     --junitxml "$RESULTS/$target.xml" ${PYTEST_ARGS:-} tests >"$RESULTS/$target.log" 2>&1) || true
}

setup_login test_pymysql test_pymysql2 bugtest
run direct "$MYSQL_PORT"

port="$(free_port)"
if start_proxy "$RESULTS/stack" "$BIN" test_pymysql "$port"; then
  run proxy "$port"
  stop_proxy
else
  say "the proxy did not start (see $RESULTS/stack/spillway.log)"
fi

report aiomysql "$RESULTS"
echo "aiomysql results: $RESULTS"
exit 0
