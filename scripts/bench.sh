#!/usr/bin/env bash
# The end-to-end load benches (benches/load.rs; figures in docs/benchmarks.md). Starts what they
# need on loopback — PostgreSQL 15 and moto's S3 server, the same way scripts/test.sh does — then
# runs `cargo bench --bench load` (a release build of the server; several minutes the first time).
#
#   bash scripts/bench.sh                 every scenario
#   bash scripts/bench.sh uploads heatmap only scenarios whose name contains one of the words
#
# S3 server: FIELDPROOF_BENCH_S3_SERVER=moto (default, as the tests use) or s3s-fs (a Rust server,
# built from crates.io into the target folder the first time, ~1.5 min; lighter on the shared cores).
# Sizes: FIELDPROOF_BENCH_UPLOADS (96), _CONCURRENCY (8), _SCENES (16), _RSS_UPLOADS (64),
# _DEALS (100000), _ADVANCES (3000), _ADVANCE_CONCURRENCY (16), _HEATMAP_REPS (200),
# _HEATMAP_CALLS (40), _LEADS (1000000), _LEAD_BURST (200), _LEAD_ROUNDS (5), _LEAD_DEALS (20000), _EVIDENCE (1000000). Not part of
# scripts/test.sh: CI stays fast.
set -euo pipefail
cd "$(dirname "$0")/.."

source scripts/services.sh

logs=$(mktemp -d)
trap stop_s3 EXIT
start_postgres fieldproof_bench fp_bench_
start_s3 "${FIELDPROOF_BENCH_S3_SERVER:-moto}"

echo "==> load benches (PostgreSQL at 127.0.0.1:5432, S3 = $S3_SERVER at $S3_ENDPOINT, pid $s3_pid)"
FIELDPROOF_BENCH_PG="$PG_URL_BASE/fieldproof_bench" \
  FIELDPROOF_BENCH_S3="$S3_ENDPOINT" \
  FIELDPROOF_BENCH_S3_PID="$s3_pid" \
  cargo bench --bench load -- "$@"
