#!/usr/bin/env bash
# The end-to-end load benches (benches/load.rs; figures in docs/benchmarks.md). Starts what they
# need on loopback — PostgreSQL 15 and moto's S3 server, the same way scripts/test.sh does — then
# runs `cargo bench --bench load` (a release build of the server; several minutes the first time).
#
#   bash scripts/bench.sh                 every scenario
#   bash scripts/bench.sh uploads heatmap only scenarios whose name contains one of the words
#
# Sizes: FIELDPROOF_BENCH_UPLOADS (96), _CONCURRENCY (8), _SCENES (16), _RSS_UPLOADS (64),
# _DEALS (100000), _ADVANCES (3000), _ADVANCE_CONCURRENCY (16), _HEATMAP_REPS (200),
# _HEATMAP_CALLS (40). Not part of scripts/test.sh: CI stays fast.
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
  if ! runuser -u postgres -- psql -Atqc "SELECT 1 FROM pg_database WHERE datname = 'fieldproof_bench'" | grep -q 1; then
    runuser -u postgres -- createdb -O fieldproof fieldproof_bench
  fi
  # Databases left by an interrupted earlier run (one per scenario).
  runuser -u postgres -- psql -Atqc "SELECT datname FROM pg_database WHERE datname LIKE 'fp_bench_%'" |
    while read -r db; do runuser -u postgres -- dropdb --if-exists "$db"; done
}

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

logs=$(mktemp -d)
trap stop_s3 EXIT
start_postgres
start_s3

echo "==> load benches (PostgreSQL at 127.0.0.1:5432, S3 = moto $MOTO_VERSION at $S3_ENDPOINT, pid $moto_pid)"
FIELDPROOF_BENCH_PG="$PG_URL_BASE/fieldproof_bench" \
  FIELDPROOF_BENCH_S3="$S3_ENDPOINT" \
  FIELDPROOF_BENCH_S3_PID="$moto_pid" \
  cargo bench --bench load -- "$@"
