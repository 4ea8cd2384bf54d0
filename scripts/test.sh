#!/usr/bin/env bash
# The whole test suite on a fresh machine. Starts what it needs (PostgreSQL 15), runs every test
# on the embedded default (SQLite), then the API tests again on PostgreSQL, and prints how many
# ran on each backend.
set -euo pipefail
cd "$(dirname "$0")/.."

PG_URL_BASE="postgres://fieldproof:fieldproof@127.0.0.1:5432"

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

count_passed() { grep -Eo 'test result: ok\. [0-9]+ passed' "$1" | awk '{s += $4} END {print s + 0}'; }

logs=$(mktemp -d)
start_postgres

echo "==> all tests, database backend: SQLite (embedded default)"
cargo test --workspace 2>&1 | tee "$logs/sqlite.log"
sqlite_api=$(grep -A200 'Running tests/api/main.rs' "$logs/sqlite.log" | grep -m1 -Eo 'test result: ok\. [0-9]+ passed' | awk '{print $4}')

echo "==> API tests, database backend: PostgreSQL"
FIELDPROOF_TEST_DATABASE_URL="$PG_URL_BASE/fieldproof_test" cargo test --test api 2>&1 | tee "$logs/postgres.log"
postgres_api=$(count_passed "$logs/postgres.log")

echo
echo "summary: $(count_passed "$logs/sqlite.log") tests passed in the SQLite run (${sqlite_api:-0} of them API tests); ${postgres_api} API tests passed on PostgreSQL"
