#!/usr/bin/env bash
# The whole test suite on a fresh machine. Starts what it needs (PostgreSQL 15 and an
# S3-compatible server, moto, on loopback), runs every test on the embedded defaults (SQLite +
# the folder blob store), then the API tests again on PostgreSQL + S3, and prints how many ran on
# each backend.
set -euo pipefail
cd "$(dirname "$0")/.."

source scripts/services.sh

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
start_postgres fieldproof_test fp_test_
start_s3
install_browser

echo "==> all tests, database: SQLite (embedded default), blob store: local folder"
cargo test --workspace 2>&1 | tee "$logs/sqlite.log"
# The API tests' own count: the first result line after their binary starts, however many
# tests it lists before it (a fixed window of lines broke the run once there were 197).
sqlite_api=$(awk '/Running tests\/api\/main\.rs/ { api = 1 }
  api && /test result: ok\. [0-9]+ passed/ { for (i = 1; i <= NF; i++) if ($i == "passed;") { print $(i - 1); exit } }' "$logs/sqlite.log")

echo "==> API tests, database: PostgreSQL, blob store: S3 ($S3_SERVER at $S3_ENDPOINT)"
# `--workspace` keeps the dependencies' features as the run above resolved them, so nothing is
# compiled again (`--test api` alone resolves them for this package only: ~45 s of rebuilding).
FIELDPROOF_TEST_DATABASE_URL="$PG_URL_BASE/fieldproof_test" FIELDPROOF_TEST_S3_ENDPOINT="$S3_ENDPOINT" \
  cargo test --workspace --test api 2>&1 | tee "$logs/postgres.log"
postgres_api=$(count_passed "$logs/postgres.log")

echo
echo "summary: $(count_passed "$logs/sqlite.log") tests passed in the SQLite + folder-store run (${sqlite_api:-0} of them API tests, $(count_storage "$logs/sqlite.log") blob store contract tests on the folder store); ${postgres_api} API tests passed on PostgreSQL + S3 ($(count_storage "$logs/postgres.log") blob store contract tests on S3)"
