#!/usr/bin/env bash
# npm run demo: the main job on a private sandbox, torn down at the end whatever happens.
set -euo pipefail
cd "$(dirname "$0")/.."
export SYNCCTL_SANDBOX_DIR="${SYNCCTL_SANDBOX_DIR:-$(mktemp -d -t syncctl-demo-XXXXXX)}"
export SYNCCTL_STATE_DIR="$SYNCCTL_SANDBOX_DIR/state"
syncctl() { node bin/syncctl "$@"; }
step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
trap 'step "sandbox down"; syncctl sandbox down || true' EXIT

step "sandbox up (Kafka broker + fixture CRM, Inventory, Analytics)"
syncctl sandbox up
eval "$(syncctl sandbox env)"

step "topics ensure"
syncctl topics ensure --partitions 6

work="$SYNCCTL_SANDBOX_DIR/work"
mkdir -p "$work"
step "publish a generated sample file (20,000 envelopes, two bad lines)"
node scripts/sample-envelopes.mjs 20000 5000 > "$work/customers.ndjson"
printf '{"broken json\n{"schemaVersion":1,"source":"crm"}\n' >> "$work/customers.ndjson"
set +e
syncctl publish --topic customer_data --in "$work/customers.ndjson"
code=$?
set -e
echo "publish exit code: $code (3 = finished, some lines rejected)"
echo "rejected lines:"; cat "$work/customers.ndjson.rejects.ndjson"

step "what landed, per partition"
syncctl topics describe customer_data
