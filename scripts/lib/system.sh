# Shared by scripts/quickstart and scripts/test: make sure this Debian machine has what spillway
# and its tests need. Every step checks first and changes nothing that is already in place, so
# running it again is cheap and safe.

say() { printf '==> %s\n' "$*" >&2; }
die() { printf 'error: %s\n' "$*" >&2; exit 2; }

have() { command -v "$1" >/dev/null 2>&1; }

# ensure_packages PKG... : apt-get install the Debian packages that are missing.
ensure_packages() {
  local missing=()
  for p in "$@"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  if [ "$(id -u)" -ne 0 ]; then
    die "missing Debian packages: ${missing[*]}; run: sudo apt-get install ${missing[*]}"
  fi
  say "installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >/dev/null
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

ensure_rust() {
  have cargo || die "cargo is not installed: install Rust with rustup (https://rustup.rs); the toolchain is pinned in rust-toolchain.toml"
}

# Node.js, and the client libraries the tests drive (node-postgres, the AWS SDK), pinned by
# tests/node/package-lock.json. Node.js also runs spillway's nodejs functions.
ensure_node() {
  have node && have npm || ensure_packages nodejs npm
}

ensure_node_clients() {
  ensure_node
  local m=tests/node/node_modules
  if [ ! -d $m/pg ] || [ ! -d $m/@aws-sdk/rds-signer ] || [ ! -d $m/@aws-sdk/client-secrets-manager ] || [ ! -d $m/@aws-sdk/client-lambda ] || [ ! -d $m/playwright-core ] || [ ! -d $m/mysql2 ] || [ ! -d $m/@aws-sdk/lib-dynamodb ]; then
    say "installing Node.js test clients (npm ci in tests/node)"
    (cd tests/node && npm ci --no-audit --no-fund --silent)
  fi
}

# boto3 and the aws CLI, which tests sign requests and make RDS IAM tokens with. Debian's
# packages when they are not already there (pip would need --break-system-packages).
ensure_aws_clients() {
  python3 -c 'import boto3' 2>/dev/null || ensure_packages python3-boto3
  have aws || ensure_packages awscli
}

# The MySQL clients the proxy's tests drive besides the mariadb CLI: PyMySQL and sysbench
# (Debian's packages; mysql2 comes with the Node.js clients).
ensure_mysql_clients() {
  python3 -c 'import pymysql' 2>/dev/null || ensure_packages python3-pymysql
  # Debian's package serves Debian's python3; a python3 of its own first on PATH (pyenv) needs
  # PyPI's, installed for it alone.
  if ! python3 -c 'import pymysql' 2>/dev/null; then
    say "installing PyMySQL for $(command -v python3)"
    python3 -m pip install --quiet --disable-pip-version-check 'PyMySQL==1.1.1'
  fi
  have sysbench || ensure_packages sysbench
}

# Debian's Chromium, which a test drives headless (with playwright-core) for CORS preflights.
ensure_browser() {
  have chromium || ensure_packages chromium
}

# awscurl (SigV4-signed curl, for the gateway's IAM routes), which Debian does not package: a
# venv under ~/.cache/spillway/tools that sees Debian's botocore, with awscurl from PyPI.
SPILLWAY_TOOLS="${SPILLWAY_TOOLS:-$HOME/.cache/spillway/tools}"
ensure_awscurl() {
  [ -x "$SPILLWAY_TOOLS/bin/awscurl" ] && return 0
  python3 -c 'import ensurepip' 2>/dev/null || ensure_packages python3-venv
  say "installing awscurl into $SPILLWAY_TOOLS"
  python3 -m venv --system-site-packages "$SPILLWAY_TOOLS"
  "$SPILLWAY_TOOLS/bin/pip" install --quiet --disable-pip-version-check 'awscurl==0.44'
}

# The machine's own PostgreSQL and MariaDB, which tests use for shared databases.
ensure_services() {
  if ! pg_isready -h 127.0.0.1 -p 5432 -q 2>/dev/null; then
    say "starting PostgreSQL"
    local v
    v=$(ls /etc/postgresql 2>/dev/null | sort -V | tail -n1)
    [ -n "$v" ] || die "no PostgreSQL cluster in /etc/postgresql; run: pg_createcluster <version> main"
    pg_ctlcluster --skip-systemctl-redirect "$v" main start || true
    for _ in $(seq 1 100); do pg_isready -h 127.0.0.1 -p 5432 -q && break; sleep 0.1; done
    pg_isready -h 127.0.0.1 -p 5432 -q || die "PostgreSQL did not start on 127.0.0.1:5432"
  fi
  if ! mariadb-admin --no-defaults -h 127.0.0.1 -P 3306 -u nobody --connect-timeout=2 ping >/dev/null 2>&1 \
     && ! mariadb-admin ping >/dev/null 2>&1; then
    say "starting MariaDB"
    start-stop-daemon --start --oknodo --background --exec /usr/sbin/mariadbd -- --user=mysql >/dev/null
    for _ in $(seq 1 150); do mariadb-admin ping >/dev/null 2>&1 && break; sleep 0.2; done
    mariadb-admin ping >/dev/null 2>&1 || die "MariaDB did not start"
  fi
}

# NATS with JetStream on 127.0.0.1:4222, for the queue's JetStream backend and its tests. Its
# store stays in $SPILLWAY_NATS_DIR (default ~/.cache/spillway/nats) across runs; the tests
# use namespaces of their own and remove them.
ensure_nats() {
  have nats-server || ensure_packages nats-server
  nats_listening && return 0
  local dir="${SPILLWAY_NATS_DIR:-$HOME/.cache/spillway/nats}"
  mkdir -p "$dir"
  say "starting nats-server -js on 127.0.0.1:4222 (store in $dir)"
  start-stop-daemon --start --oknodo --background --make-pidfile --pidfile "$dir/nats-server.pid" \
    --exec "$(command -v nats-server)" -- -a 127.0.0.1 -p 4222 -js -sd "$dir" -l "$dir/nats-server.log"
  for _ in $(seq 1 100); do nats_listening && break; sleep 0.1; done
  nats_listening || die "nats-server did not start on 127.0.0.1:4222 (see $dir/nats-server.log)"
}

# True when something answers NATS' INFO greeting with JetStream on on 127.0.0.1:4222.
nats_listening() {
  timeout 2 bash -c 'exec 3<>/dev/tcp/127.0.0.1/4222 && head -n1 <&3' 2>/dev/null \
    | grep -q '"jetstream":true'
}

# A login for tests on each machine server (created once, by the servers' own administrators:
# the postgres OS user for PostgreSQL, root over the socket for MariaDB).
ensure_test_logins() {
  if ! PGPASSWORD=spillway_test psql -X -h 127.0.0.1 -U spillway_test -d postgres -Atc 'select 1' >/dev/null 2>&1; then
    say "creating the spillway_test login on PostgreSQL"
    local sql="DO \$\$BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'spillway_test') THEN CREATE ROLE spillway_test LOGIN SUPERUSER PASSWORD 'spillway_test'; END IF; END\$\$;"
    if [ "$(id -u)" -eq 0 ]; then
      runuser -u postgres -- psql -X -q -d postgres -c "$sql"
    else
      psql -X -q -h 127.0.0.1 -d postgres -c "$sql"
    fi
  fi
  if ! MYSQL_PWD=spillway_test mariadb --no-defaults -h 127.0.0.1 -u spillway_test -e 'select 1' >/dev/null 2>&1; then
    say "creating the spillway_test login on MariaDB"
    mariadb -e "CREATE USER IF NOT EXISTS 'spillway_test'@'127.0.0.1' IDENTIFIED BY 'spillway_test';
                CREATE USER IF NOT EXISTS 'spillway_test'@'localhost' IDENTIFIED BY 'spillway_test';
                GRANT ALL PRIVILEGES ON *.* TO 'spillway_test'@'127.0.0.1' WITH GRANT OPTION;
                GRANT ALL PRIVILEGES ON *.* TO 'spillway_test'@'localhost' WITH GRANT OPTION;"
  fi
}
