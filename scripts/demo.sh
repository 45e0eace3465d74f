#!/usr/bin/env bash
# npm run demo: the whole pipeline on a private, throw-away sandbox (torn down whatever happens):
# CRM + Inventory → fetch → Kafka → consume → Analytics, then a second, incremental round.
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

step "fetch customers from the CRM straight into Kafka"
syncctl fetch --source crm --publish
step "fetch products from the Inventory (SOAP) straight into Kafka"
syncctl fetch --source inventory --publish

step "what landed, per partition"
syncctl topics describe

step "consume --once: merge customers with their products, dedupe, deliver to Analytics"
syncctl consume --once

step "Analytics now holds"
http analytics-summary

step "the source systems change: 25 customers updated, 5 archived, 10 products changed, 2 discontinued"
http mutate

step "second round: incremental fetches move only what changed"
syncctl fetch --source crm --publish
syncctl fetch --source inventory --publish
syncctl consume --once

step "Analytics now holds"
http analytics-summary
