# Shared by pymysql.sh and aiomysql.sh: the MariaDB login and databases the suites use, a
# spillway stack whose MySQL proxy fronts that MariaDB as an external database, and pytest's
# counts. Sourced, not run.

say() { printf '==> %s\n' "$*" >&2; }
die() { printf 'error: %s\n' "$*" >&2; exit 2; }

MYSQL_HOST="${MYSQL_HOST:-127.0.0.1}"
MYSQL_PORT="${MYSQL_PORT:-3306}"
SUITE_USER="${SUITE_USER:-suite}"
SUITE_PASSWORD="${SUITE_PASSWORD:-suite-pw}"
CACHE="${SUITES_CACHE:-$HOME/.cache/spillway/suites}"
STEP_TIMEOUT="${STEP_TIMEOUT:-300}"     # s for each download / install step
SUITE_TIMEOUT="${SUITE_TIMEOUT:-900}"   # s for one pytest run (each test also has --timeout)
TEST_TIMEOUT="${TEST_TIMEOUT:-60}"      # s per test
PYTEST_VERSION="${PYTEST_VERSION:-8.4.2}"
PYTEST_TIMEOUT_VERSION="${PYTEST_TIMEOUT_VERSION:-2.4.0}"

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# An administrator's mariadb command line: MYSQL_ADMIN, else root over the Unix socket (as
# scripts/lib/system.sh uses it), else root over TCP without a password, else spillway_test.
admin_sql() {
  if [ -z "${ADMIN_CMD:-}" ]; then
    local c
    for c in "${MYSQL_ADMIN:-}" "mariadb --no-defaults" \
             "mariadb --no-defaults -h $MYSQL_HOST -P $MYSQL_PORT -u root" \
             "mariadb --no-defaults -h $MYSQL_HOST -P $MYSQL_PORT -u spillway_test -pspillway_test"; do
      [ -n "$c" ] || continue
      if timeout 10 $c -e 'select 1' >/dev/null 2>&1; then ADMIN_CMD="$c"; break; fi
    done
    [ -n "${ADMIN_CMD:-}" ] || die "no administrator login on MariaDB at $MYSQL_HOST:$MYSQL_PORT (set MYSQL_ADMIN)"
  fi
  timeout 30 $ADMIN_CMD -e "$1"
}

# setup_login DB... : the suite's user (same name and password at 127.0.0.1 and localhost),
# ALL on each named database (created), SELECT on `mysql` (tests read mysql.user), FILE.
setup_login() {
  local sql="" h db
  for h in 127.0.0.1 localhost; do
    sql+="CREATE USER IF NOT EXISTS '$SUITE_USER'@'$h' IDENTIFIED BY '$SUITE_PASSWORD';
          ALTER USER '$SUITE_USER'@'$h' IDENTIFIED BY '$SUITE_PASSWORD';
          GRANT SELECT ON mysql.* TO '$SUITE_USER'@'$h';
          GRANT FILE ON *.* TO '$SUITE_USER'@'$h';"
    for db in "$@"; do sql+="GRANT ALL ON \`$db\`.* TO '$SUITE_USER'@'$h';"; done
  done
  for db in "$@"; do sql+="CREATE DATABASE IF NOT EXISTS \`$db\` DEFAULT CHARACTER SET utf8mb4;"; done
  admin_sql "$sql" || die "cannot create the $SUITE_USER login and its databases"
}

# fresh_databases DB... : drop and create them (a run starts from empty databases).
fresh_databases() {
  local sql="" db
  for db in "$@"; do sql+="DROP DATABASE IF EXISTS \`$db\`; CREATE DATABASE \`$db\` DEFAULT CHARACTER SET utf8mb4;"; done
  admin_sql "$sql" || die "cannot recreate $*"
}

# venv DIR PACKAGE==VERSION... : a venv with exactly these pinned packages (reinstalled only
# when the list changes).
venv() {
  local dir="$1"; shift
  local want="$*"
  if [ ! -x "$dir/bin/python" ] || [ "$(cat "$dir/.pins" 2>/dev/null)" != "$want" ]; then
    say "creating $dir ($want)"
    rm -rf "$dir"
    timeout "$STEP_TIMEOUT" python3 -m venv "$dir" || die "python3 -m venv failed (Debian: apt-get install python3-venv)"
    timeout "$STEP_TIMEOUT" "$dir/bin/pip" install -q --disable-pip-version-check "$@" || die "pip install $* failed"
    echo "$want" > "$dir/.pins"
  fi
}

# sdist NAME VERSION : the pinned source distribution from PyPI, in $CACHE/sdist; prints its path.
# pip download builds metadata, which needs nothing beyond setuptools for these pure-Python
# packages.
sdist() {
  local name="$1" version="$2" dir="$CACHE/sdist" f
  mkdir -p "$dir"
  f=$(find "$dir" -maxdepth 1 -iname "$name-$version.tar.gz" | head -1)
  if [ -z "$f" ]; then
    say "downloading the $name $version sdist from PyPI"
    timeout "$STEP_TIMEOUT" python3 -m pip download -q --disable-pip-version-check --no-binary :all: --no-deps \
      "$name==$version" -d "$dir" >&2 || die "pip download $name==$version failed"
    f=$(find "$dir" -maxdepth 1 -iname "$name-$version.tar.gz" | head -1)
  fi
  [ -n "$f" ] || die "no $name $version sdist in $dir"
  echo "$f"
}

# start_proxy STACKDIR BINARY DB PORT : a stack whose proxy (transaction pooling, the default)
# fronts $MYSQL_HOST:$MYSQL_PORT/DB as an external database, logged in as the suite's user.
PROXY_PID=""
start_proxy() {
  local dir="$1" bin="$2" db="$3" port="$4"
  rm -rf "$dir"; mkdir -p "$dir"
  cat > "$dir/spillway.toml" <<TOML
[stack]
name = "driver-suite"
endpoint = "127.0.0.1:0"

[databases.main]
engine = "mysql"
url = "mysql://$SUITE_USER:$SUITE_PASSWORD@$MYSQL_HOST:$MYSQL_PORT/$db"

[secrets.suite]
username = "$SUITE_USER"
password = "$SUITE_PASSWORD"

[proxies.main]
database = "main"
listen = "127.0.0.1:$port"
auth = [{ secret = "suite" }]
# The suites test LOAD DATA LOCAL INFILE, which the proxy refuses unless allowed.
local_infile = true
TOML
  (cd "$dir" && exec "$bin" up >"$dir/spillway.log" 2>&1) &
  PROXY_PID=$!
  local i
  for i in $(seq 1 600); do
    grep -q "spillway is up" "$dir/spillway.log" 2>/dev/null && return 0
    kill -0 "$PROXY_PID" 2>/dev/null || break
    sleep 0.1
  done
  tail -20 "$dir/spillway.log" >&2 || true
  stop_proxy
  return 1
}

stop_proxy() {
  [ -n "$PROXY_PID" ] || return 0
  kill -TERM "$PROXY_PID" 2>/dev/null || true
  local i
  for i in $(seq 1 150); do kill -0 "$PROXY_PID" 2>/dev/null || break; sleep 0.1; done
  kill -KILL "$PROXY_PID" 2>/dev/null || true
  wait "$PROXY_PID" 2>/dev/null || true
  PROXY_PID=""
}

# counts JUNIT_XML : "N passed, M failed, K skipped" (failed counts errors, skipped counts
# xfailed), or "not run" without a report.
counts() {
  python3 - "$1" <<'PY'
import sys, xml.etree.ElementTree as ET
try:
    root = ET.parse(sys.argv[1]).getroot()
except Exception as e:
    print(f"not run ({e.__class__.__name__})"); sys.exit()
suites = [root] if root.tag == "testsuite" else root.findall("testsuite")
t = sum(int(s.get("tests", 0)) for s in suites)
f = sum(int(s.get("failures", 0)) + int(s.get("errors", 0)) for s in suites)
k = sum(int(s.get("skipped", 0)) for s in suites)
print(f"{t - f - k} passed, {f} failed, {k} skipped")
PY
}

# failing JUNIT_XML [skipped] : the ids of failed or erroring tests (or of skipped and xfailed
# ones), one a line, sorted ([...-LABEL] parameter suffixes normalized so that two targets
# compare).
failing() {
  python3 - "$1" "${2:-failure}" <<'PY'
import sys, re, xml.etree.ElementTree as ET
kinds = ("skipped",) if sys.argv[2] == "skipped" else ("failure", "error")
try:
    root = ET.parse(sys.argv[1]).getroot()
except Exception:
    sys.exit()
out = set()
for tc in root.iter("testcase"):
    if any(tc.find(k) is not None for k in kinds):
        name = re.sub(r"-(direct|proxy)\]$", "]", tc.get("name", ""))
        out.add(f"{tc.get('classname')}::{name}")
print("\n".join(sorted(out)))
PY
}

# report SUITE RESULTS : the per-mode lines and the tests that fail only through the proxy.
report() {
  local suite="$1" res="$2"
  echo "$suite direct: $(counts "$res/direct.xml")"
  echo "$suite proxy: $(counts "$res/proxy.xml")"
  failing "$res/direct.xml" > "$res/direct.failing"
  failing "$res/proxy.xml" > "$res/proxy.failing"
  local only
  only=$(comm -13 "$res/direct.failing" "$res/proxy.failing")
  if [ -n "$only" ]; then
    echo "$suite proxy-only failures:"
    printf '  %s\n' $only
  fi
  local fixed
  fixed=$(comm -23 "$res/direct.failing" "$res/proxy.failing")
  if [ -n "$fixed" ]; then
    echo "$suite direct-only failures:"
    printf '  %s\n' $fixed
  fi
  failing "$res/direct.xml" skipped > "$res/direct.skipped"
  failing "$res/proxy.xml" skipped > "$res/proxy.skipped"
  only=$(comm -13 "$res/direct.skipped" "$res/proxy.skipped")
  if [ -n "$only" ]; then
    echo "$suite proxy-only skips/xfails:"
    printf '  %s\n' $only
  fi
}
