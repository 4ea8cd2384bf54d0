#!/usr/bin/env bash
# The whole test suite on a fresh machine. Starts what it needs (PostgreSQL 15 and an
# S3-compatible server, moto, on loopback), runs every test on the embedded defaults (SQLite +
# the folder blob store), then the API tests again on PostgreSQL + S3, and prints how many ran on
# each backend.
set -euo pipefail
cd "$(dirname "$0")/.."

PG_URL_BASE="postgres://fieldproof:fieldproof@127.0.0.1:5432"
MOTO_VERSION="5.2.5"
MOTO_VENV="${CARGO_TARGET_DIR:-target}/moto-venv"
moto_pid=""

start_postgres() {
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
SQL
  if ! runuser -u postgres -- psql -Atqc "SELECT 1 FROM pg_database WHERE datname = 'fieldproof_test'" | grep -q 1; then
    runuser -u postgres -- createdb -O fieldproof fieldproof_test
  fi
  # Databases left by earlier runs (one per test).
  runuser -u postgres -- psql -Atqc "SELECT datname FROM pg_database WHERE datname LIKE 'fp_test_%'" |
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
  echo "the S3 test server did not start; its log:" >&2
  cat "$logs/moto.log" >&2
  exit 1
}

stop_s3() {
  if [ -n "$moto_pid" ]; then
    kill "$moto_pid" 2>/dev/null || true
    wait "$moto_pid" 2>/dev/null || true
  fi
}

# Headless Chromium and a CJK font for the console's browser tests (the keyboard review path and the
# screenshots; without Chromium they are skipped, or fail when CI is set).
install_browser() {
  if ! command -v chromium >/dev/null || ! fc-list 2>/dev/null | grep -qi "wqy\|noto sans cjk"; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium fonts-wqy-microhei >/dev/null
  fi
}

count_passed() { grep -Eo 'test result: ok\. [0-9]+ passed' "$1" | awk '{s += $4} END {print s + 0}'; }

# The blob store contract tests (tests/api/storage.rs) that passed in a run's log.
count_storage() { grep -cE '^test storage::[a-z0-9_]+ \.\.\. ok$' "$1" || true; }

# The quote tests read PDFs with poppler's pdftotext and drive the H5 page in headless Chromium;
# without them those tests fail (loudly), so install them here.
install_test_tools() {
  local missing=()
  command -v pdftotext >/dev/null || missing+=(poppler-utils)
  command -v chromium >/dev/null || missing+=(chromium)
  if [ ${#missing[@]} -gt 0 ]; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
  fi
}

logs=$(mktemp -d)
trap stop_s3 EXIT
install_test_tools
start_postgres
start_s3
install_browser

echo "==> all tests, database: SQLite (embedded default), blob store: local folder"
cargo test --workspace 2>&1 | tee "$logs/sqlite.log"
sqlite_api=$(grep -A200 'Running tests/api/main.rs' "$logs/sqlite.log" | grep -m1 -Eo 'test result: ok\. [0-9]+ passed' | awk '{print $4}')

echo "==> API tests, database: PostgreSQL, blob store: S3 (moto $MOTO_VERSION at $S3_ENDPOINT)"
FIELDPROOF_TEST_DATABASE_URL="$PG_URL_BASE/fieldproof_test" FIELDPROOF_TEST_S3_ENDPOINT="$S3_ENDPOINT" \
  cargo test --test api 2>&1 | tee "$logs/postgres.log"
postgres_api=$(count_passed "$logs/postgres.log")

echo
echo "summary: $(count_passed "$logs/sqlite.log") tests passed in the SQLite + folder-store run (${sqlite_api:-0} of them API tests, $(count_storage "$logs/sqlite.log") blob store contract tests on the folder store); ${postgres_api} API tests passed on PostgreSQL + S3 ($(count_storage "$logs/postgres.log") blob store contract tests on S3)"
