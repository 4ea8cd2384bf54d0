# Services the test and bench scripts start on loopback: PostgreSQL 15 (installed if missing)
# and an S3-compatible server: moto in a venv of its own (tests and benches), or s3s-fs built from
# crates.io (benches only, FIELDPROOF_BENCH_S3_SERVER=s3s-fs). Sourced; `$logs` must name a folder.
PG_URL_BASE="postgres://fieldproof:fieldproof@127.0.0.1:5432"
MOTO_VERSION="5.2.5"
MOTO_VENV="${CARGO_TARGET_DIR:-target}/moto-venv"
S3S_FS_VERSION="0.14.1"
S3S_FS_ROOT="${CARGO_TARGET_DIR:-target}/s3s-fs"
# The S3 server's pid (either kind).
s3_pid=""

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

# s3s-fs, an S3 server in Rust over a local folder: a lighter neighbour than moto for the load
# benches, which share the machine's cores with it. Built once into the target folder.
install_s3s_fs() {
  if [ -x "$S3S_FS_ROOT/bin/s3s-fs" ] &&
    [ "$(cat "$S3S_FS_ROOT/version" 2>/dev/null)" = "$S3S_FS_VERSION" ]; then
    return
  fi
  cargo install --quiet --locked --features binary --version "$S3S_FS_VERSION" --root "$S3S_FS_ROOT" s3s-fs
  echo "$S3S_FS_VERSION" >"$S3S_FS_ROOT/version"
}

free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# Start the S3 server ("moto", the default, or "s3s-fs") on a free loopback port: sets
# S3_ENDPOINT, S3_SERVER (its name and version) and s3_pid. Credentials: test / test.
start_s3() {
  local kind="${1:-moto}" port
  port=$(free_port)
  S3_ENDPOINT="http://127.0.0.1:$port"
  case "$kind" in
  moto)
    install_moto
    "$MOTO_VENV/bin/moto_server" -H 127.0.0.1 -p "$port" >"$logs/s3.log" 2>&1 &
    S3_SERVER="moto $MOTO_VERSION"
    ;;
  s3s-fs)
    install_s3s_fs
    mkdir -p "$logs/s3s-fs-data"
    "$S3S_FS_ROOT/bin/s3s-fs" --host 127.0.0.1 --port "$port" --access-key test --secret-key test \
      "$logs/s3s-fs-data" >"$logs/s3.log" 2>&1 &
    S3_SERVER="s3s-fs $S3S_FS_VERSION"
    ;;
  *)
    echo "unknown S3 server '$kind' (moto or s3s-fs)" >&2
    exit 2
    ;;
  esac
  s3_pid=$!
  for _ in $(seq 1 60); do
    # Any HTTP answer (moto lists buckets, s3s-fs refuses an unsigned request) means it is up.
    if python3 -c "
import urllib.request, urllib.error
try:
    urllib.request.urlopen('$S3_ENDPOINT/', timeout=1)
except urllib.error.HTTPError:
    pass" 2>/dev/null; then
      return
    fi
    kill -0 "$s3_pid" 2>/dev/null || break
    sleep 0.5
  done
  echo "the S3 server did not start; its log:" >&2
  cat "$logs/s3.log" >&2
  exit 1
}

stop_s3() {
  if [ -n "$s3_pid" ]; then
    kill "$s3_pid" 2>/dev/null || true
    wait "$s3_pid" 2>/dev/null || true
  fi
}

