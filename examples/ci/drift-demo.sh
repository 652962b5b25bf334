#!/usr/bin/env bash
# Drift in one minute, on the sandbox: apply the quickstart, change one of its identities behind
# wiform's back with curl (as someone would in the portal), and watch `wiform drift` name the
# change and exit 2. Then apply again and watch it exit 0.
#
#   bash examples/ci/drift-demo.sh
#
# Set WIFORM to a built binary to skip `cargo run` (e.g. WIFORM=target/release/wiform).
set -euo pipefail
cd "$(dirname "$0")/../.."

if [ -z "${WIFORM:-}" ]; then
  cargo build --release --quiet
  WIFORM=target/release/wiform
fi
CONFIG=examples/quickstart/identity.toml
DIR=$(mktemp -d)
SERVE_PID=
cleanup() {
  [ -n "$SERVE_PID" ] && kill "$SERVE_PID" 2>/dev/null || true
  rm -rf "$DIR"
}
trap cleanup EXIT

step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

step "start a sandbox (state in $DIR)"
"$WIFORM" sandbox serve --state-dir "$DIR" --port 0 >"$DIR/serve.log" 2>&1 &
SERVE_PID=$!
for _ in $(seq 100); do [ -s "$DIR/sandbox.env" ] && [ -s "$DIR/endpoint" ] && break; sleep 0.1; done
# shellcheck disable=SC1091
source "$DIR/sandbox.env" # AZURE_*, WIFORM_SANDBOX_URL, CURL_CA_BUNDLE (never printed)

step "wiform apply"
"$WIFORM" apply --sandbox --sandbox-dir "$DIR" --auto-approve -f "$CONFIG" >/dev/null
echo "applied $CONFIG"

step "wiform drift (in sync)"
"$WIFORM" drift --sandbox --sandbox-dir "$DIR" -f "$CONFIG" && echo "exit 0"

step "someone edits a tag of identity keyvault-reader with curl"
TOKEN=$(curl -sf "$AZURE_AUTHORITY_HOST/$AZURE_TENANT_ID/oauth2/v2.0/token" \
  --data-urlencode grant_type=client_credentials \
  --data-urlencode "client_id=$AZURE_CLIENT_ID" \
  --data-urlencode "client_secret=$AZURE_CLIENT_SECRET" \
  --data-urlencode scope=https://management.azure.com/.default |
  python3 -c 'import json, sys; print(json.load(sys.stdin)["access_token"])')
IDENTITY="$WIFORM_SANDBOX_URL/subscriptions/$AZURE_SUBSCRIPTION_ID/resourceGroups/rg-workload-id/providers/Microsoft.ManagedIdentity/userAssignedIdentities/keyvault-reader?api-version=2024-11-30"
TAGS=$(curl -sf -H "Authorization: Bearer $TOKEN" "$IDENTITY" |
  python3 -c 'import json, sys; t = json.load(sys.stdin)["tags"]; t["purpose"] = "changed-in-the-portal"; print(json.dumps({"tags": t}))')
curl -sf -X PATCH -H "Authorization: Bearer $TOKEN" -H "Content-Type: application/json" \
  -d "$TAGS" "$IDENTITY" >/dev/null
echo 'PATCH keyvault-reader: tags.purpose = "changed-in-the-portal"'

step "wiform drift (expect exit 2, the change named)"
set +e
"$WIFORM" drift --sandbox --sandbox-dir "$DIR" -f "$CONFIG"
code=$?
set -e
echo "exit $code"
if [ "$code" -ne 2 ]; then
  echo "expected exit 2 (drift)" >&2
  exit 1
fi

step "wiform apply restores it; drift is quiet again"
"$WIFORM" apply --sandbox --sandbox-dir "$DIR" --auto-approve -f "$CONFIG" >/dev/null
"$WIFORM" drift --sandbox --sandbox-dir "$DIR" -f "$CONFIG" && echo "exit 0"
