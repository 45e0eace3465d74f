#!/usr/bin/env bash
# npm run demo: the whole pipeline on a private, throw-away sandbox (torn down whatever happens):
# doctor, then the nightly `run` (CRM + Inventory → Kafka → consume → Analytics) with its lock,
# status and metrics, then a second, incremental run and a CSV export.
set -euo pipefail
cd "$(dirname "$0")/.."
export SYNCCTL_SANDBOX_DIR="${SYNCCTL_SANDBOX_DIR:-$(mktemp -d -t syncctl-demo-XXXXXX)}"
export SYNCCTL_STATE_DIR="$SYNCCTL_SANDBOX_DIR/state"
syncctl() { node bin/syncctl "$@"; }
step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
# Whatever ends the demo (an error, Ctrl-C, a closed pipe such as `| head`), stop the sandbox.
trap 'step "sandbox down" >&2; syncctl sandbox down >&2 || true' EXIT
trap 'exit 130' INT TERM
trap '' PIPE

# Talks to the fixture systems' read-back and control endpoints (what a test would compare).
http() { node scripts/demo-http.mjs "$@"; }

step "sandbox up: a Kafka broker plus fixture CRM (REST), Inventory (SOAP) and Analytics"
syncctl sandbox up
eval "$(syncctl sandbox env)"

step "topics ensure"
syncctl topics ensure --partitions 6

step "doctor: is everything this job needs reachable, and is the config sound?"
syncctl doctor

metrics="$SYNCCTL_SANDBOX_DIR/syncctl.prom"
step "run: the nightly job (fetch CRM + Inventory into Kafka, consume --once into Analytics) under a lock"
http crm-latency 400 # a slow CRM: the first run holds its lock for a few seconds
syncctl run --job nightly --metrics-file "$metrics" &
first=$!
# Wait until the first run holds its lock, then show what cron's overlapping start would get.
for _ in $(seq 1 100); do
  if syncctl status --json 2>/dev/null | grep -q '"run:nightly"'; then break; fi
  sleep 0.2
done
step "a second run while the first holds the lock exits 4, naming the holder"
code=0
syncctl run --job nightly || code=$?
echo "second run exit code: $code"
wait "$first"
http crm-latency 0

step "status: offsets and lag, dead letters, checkpoints, runs, locks"
syncctl status

step "the metrics file a node_exporter textfile collector would scrape ($metrics)"
grep -E '^syncctl_(run_records|run_exit_code|last_success)' "$metrics"

step "Analytics now holds"
http analytics-summary

step "the source systems change: 25 customers updated, 5 archived, 10 products changed, 2 discontinued"
http mutate

step "second run: the incremental fetches move only what changed"
syncctl run --job nightly --metrics-file "$metrics"

step "Analytics now holds"
http analytics-summary

step "export-csv: the unified view as CSV for a spreadsheet (first 3 rows)"
syncctl export-csv --columns customerId,productCount,productIds --out "$SYNCCTL_SANDBOX_DIR/unified.csv"
head -4 "$SYNCCTL_SANDBOX_DIR/unified.csv"
