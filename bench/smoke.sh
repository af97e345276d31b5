#!/usr/bin/env bash
# CI-sized run of every benchmark and fault script (seconds each), so they keep working.
# Figures from a smoke run mean nothing; the full runs are for people (bench/README.md).
# Each script stops what it started (own Redis/PostgreSQL of the fault scripts included) on
# success and failure; `timeout` bounds a hung one.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=.venv/bin/python
command -v wrk >/dev/null || apt-get install -y --no-install-recommends wrk >/dev/null
run() {  # script args...
  echo "bench smoke: $*"
  timeout --kill-after=10 180 "$PY" "$@" --smoke | tail -n 1
}
run bench/engine.py
run bench/ingest.py
run bench/ingest_cpu.py
run bench/waiting.py
run bench/live.py
run bench/cel_flood.py
run bench/scale.py
run bench/rules.py
run bench/projections.py
run bench/faults/kill_workers.py
run bench/faults/restart_redis.py
run bench/faults/restart_postgres.py
run bench/faults/kill_before_dispatch.py
run bench/faults/kill_rules.py
echo "bench smoke: all scripts ran"
