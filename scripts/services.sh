# Services the test and bench scripts start on loopback: PostgreSQL 15 (installed if missing)
# and moto's S3-compatible server in a venv of its own. Sourced; `$logs` must name a folder.
PG_URL_BASE="postgres://fieldproof:fieldproof@127.0.0.1:5432"
MOTO_VERSION="5.2.5"
MOTO_VENV="${CARGO_TARGET_DIR:-target}/moto-venv"
moto_pid=""

start_postgres() {
  local PG_DB="$1" PG_DB_PREFIX="$2"
  if ! command -v pg_ctlcluster >/dev/null; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null
  fi
  local version
  version=$(pg_lsclusters -h | awk 'NR==1 {print $1}')
  if ! pg_lsclusters -h | awk '{print $4}' | grep -q online; then
    pg_ctlcluster "$version" main start
  fi
  for _ in $(seq 1 30); do
    runuser -u postgres -- pg_isready -q -h 127.0.0.1 && break
    sleep 1
  done
  runuser -u postgres -- psql -v ON_ERROR_STOP=1 -q <<'SQL'
DO $$ BEGIN
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'fieldproof') THEN
    CREATE ROLE fieldproof LOGIN CREATEDB PASSWORD 'fieldproof';
  END IF;
END $$;
-- The load benches checkpoint their seeded data before measuring (PostgreSQL 15+).
DO $$ BEGIN
  IF EXISTS (SELECT FROM pg_roles WHERE rolname = 'pg_checkpoint') THEN
    GRANT pg_checkpoint TO fieldproof;
  END IF;
END $$;
SQL
  if ! runuser -u postgres -- psql -Atqc "SELECT 1 FROM pg_database WHERE datname = '$PG_DB'" | grep -q 1; then
    runuser -u postgres -- createdb -O fieldproof "$PG_DB"
  fi
  # Databases left by earlier runs (one per test or scenario).
  runuser -u postgres -- psql -Atqc "SELECT datname FROM pg_database WHERE datname LIKE '${PG_DB_PREFIX}%'" |
    while read -r db; do runuser -u postgres -- dropdb --if-exists "$db"; done
}

# moto's server mode from PyPI, in a venv of its own so nothing depends on hand-installed packages.
install_moto() {
  if [ -x "$MOTO_VENV/bin/moto_server" ] &&
    [ "$("$MOTO_VENV/bin/python" -c 'import importlib.metadata as m; print(m.version("moto"))' 2>/dev/null)" = "$MOTO_VERSION" ]; then
    return
  fi
  rm -rf "$MOTO_VENV"
  if ! python3 -m venv "$MOTO_VENV" 2>/dev/null; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv >/dev/null
    python3 -m venv "$MOTO_VENV"
  fi
  "$MOTO_VENV/bin/pip" install -q --disable-pip-version-check "moto[server]==$MOTO_VERSION"
}

start_s3() {
  install_moto
  local port
  port=$("$MOTO_VENV/bin/python" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
  "$MOTO_VENV/bin/moto_server" -H 127.0.0.1 -p "$port" >"$logs/moto.log" 2>&1 &
  moto_pid=$!
  S3_ENDPOINT="http://127.0.0.1:$port"
  for _ in $(seq 1 60); do
    if "$MOTO_VENV/bin/python" -c "import urllib.request; urllib.request.urlopen('$S3_ENDPOINT/', timeout=1)" 2>/dev/null; then
      return
    fi
    kill -0 "$moto_pid" 2>/dev/null || break
    sleep 0.5
  done
  echo "the S3 server did not start; its log:" >&2
  cat "$logs/moto.log" >&2
  exit 1
}

stop_s3() {
  if [ -n "$moto_pid" ]; then
    kill "$moto_pid" 2>/dev/null || true
    wait "$moto_pid" 2>/dev/null || true
  fi
}

