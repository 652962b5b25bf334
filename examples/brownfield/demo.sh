#!/usr/bin/env bash
# Coming from the recipes, on the sandbox: build the end state of the Cats API recipe
# (../shared/seeds, seed 002) with the same REST and Kubernetes requests `az` and `kubectl` send
# — an identity, a federated credential under a name of the user's choosing, a role assignment
# with a random GUID name and no principalType, a service account annotated with the identity's
# client id —, then `wiform import` it, show the file, the plan (adoptions only), apply it, and
# `wiform verify` that the service account still gets its token.
#
#   bash examples/brownfield/demo.sh
#
# Set WIFORM to a built binary to skip `cargo run` (e.g. WIFORM=target/release/wiform).
set -euo pipefail
cd "$(dirname "$0")/../.."

if [ -z "${WIFORM:-}" ]; then
  cargo build --release --quiet
  WIFORM=target/release/wiform
fi
DIR=$(mktemp -d)
SERVE_PID=
cleanup() {
  [ -n "$SERVE_PID" ] && kill "$SERVE_PID" 2>/dev/null || true
  rm -rf "$DIR"
}
trap cleanup EXIT

step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
json() { python3 -c "import json, sys; d = json.load(sys.stdin); print($1)"; }

step "start a sandbox (state in $DIR) with the recipe's resource group and AKS cluster"
"$WIFORM" sandbox serve --state-dir "$DIR" --port 0 >"$DIR/serve.log" 2>&1 &
SERVE_PID=$!
for _ in $(seq 100); do [ -s "$DIR/sandbox.env" ] && [ -s "$DIR/endpoint" ] && break; sleep 0.1; done
# shellcheck disable=SC1091
source "$DIR/sandbox.env" # AZURE_*, WIFORM_SANDBOX_URL, CURL_CA_BUNDLE (never printed)
cat >"$DIR/seed.toml" <<'EOF'
[[resource_groups]]
name = "rg-cats"
location = "westeurope"

[[managed_clusters]]                 # az aks create --enable-oidc-issuer --enable-workload-identity
resource_group = "rg-cats"
name = "aks-cats"
oidc_issuer = true
workload_identity = true
EOF
"$WIFORM" sandbox seed --state-dir "$DIR" -f "$DIR/seed.toml"

TOKEN=$(curl -sf "$AZURE_AUTHORITY_HOST/$AZURE_TENANT_ID/oauth2/v2.0/token" \
  --data-urlencode grant_type=client_credentials \
  --data-urlencode "client_id=$AZURE_CLIENT_ID" \
  --data-urlencode "client_secret=$AZURE_CLIENT_SECRET" \
  --data-urlencode scope=https://management.azure.com/.default | json 'd["access_token"]')
arm() { # METHOD PATH [BODY]
  curl -sf -X "$1" -H "Authorization: Bearer $TOKEN" -H "Content-Type: application/json" \
    ${3:+-d "$3"} "$WIFORM_SANDBOX_URL$2"
}
SUB="/subscriptions/$AZURE_SUBSCRIPTION_ID"
RG="$SUB/resourceGroups/rg-cats"
ID="$RG/providers/Microsoft.ManagedIdentity/userAssignedIdentities/CatsApiUserAssignedIdentity"

step "the recipe, as az sends it"
IDENTITY=$(arm PUT "$ID?api-version=2024-11-30" '{"location": "westeurope"}')
CLIENT_ID=$(echo "$IDENTITY" | json 'd["properties"]["clientId"]')
PRINCIPAL_ID=$(echo "$IDENTITY" | json 'd["properties"]["principalId"]')
echo "az identity create -n CatsApiUserAssignedIdentity (client id $CLIENT_ID)"
ISSUER=$(arm GET "$RG/providers/Microsoft.ContainerService/managedClusters/aks-cats?api-version=2025-07-01" |
  json 'd["properties"]["oidcIssuerProfile"]["issuerURL"]')
arm PUT "$ID/federatedIdentityCredentials/CatsApiFederatedIdentity?api-version=2024-11-30" \
  "{\"properties\": {\"issuer\": \"$ISSUER\", \"subject\": \"system:serviceaccount:cats:cats-api-sa\", \"audiences\": [\"api://AzureADTokenExchange\"]}}" >/dev/null
echo "az identity federated-credential create --name CatsApiFederatedIdentity"
ASSIGNMENT=$(python3 -c 'import uuid; print(uuid.uuid4())')
arm PUT "$RG/providers/Microsoft.Authorization/roleAssignments/$ASSIGNMENT?api-version=2022-04-01" \
  "{\"properties\": {\"roleDefinitionId\": \"$SUB/providers/Microsoft.Authorization/roleDefinitions/4633458b-17de-408a-b874-0445c86b69e6\", \"principalId\": \"$PRINCIPAL_ID\"}}" >/dev/null
echo "az role assignment create --role \"Key Vault Secrets User\" (name $ASSIGNMENT, no principalType)"

# The cluster's Kubernetes API, from the user credential az aks get-credentials reads.
KUBECONFIG_TEXT=$(arm POST "$RG/providers/Microsoft.ContainerService/managedClusters/aks-cats/listClusterUserCredential?api-version=2025-07-01" |
  json 'd["kubeconfigs"][0]["value"]' | base64 -d)
SERVER=$(echo "$KUBECONFIG_TEXT" | sed -n 's/^ *server: *//p' | head -n 1)
KUBE_TOKEN=$(echo "$KUBECONFIG_TEXT" | sed -n 's/^ *token: *//p' | head -n 1)
kube() { # METHOD PATH BODY
  curl -sf -X "$1" -H "Authorization: Bearer $KUBE_TOKEN" -H "Content-Type: application/json" -d "$3" "$SERVER$2" >/dev/null
}
kube POST /api/v1/namespaces '{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "cats"}}'
kube POST /api/v1/namespaces/cats/serviceaccounts \
  "{\"apiVersion\": \"v1\", \"kind\": \"ServiceAccount\", \"metadata\": {\"name\": \"cats-api-sa\", \"annotations\": {\"azure.workload.identity/client-id\": \"$CLIENT_ID\"}}}"
echo "kubectl create namespace cats; kubectl apply service account cats-api-sa (annotated)"

step "wiform import"
"$WIFORM" import --sandbox --sandbox-dir "$DIR" --cluster rg-cats/aks-cats --name cats -o "$DIR/identity.toml"
cat "$DIR/identity.toml"

step "wiform plan (adoptions only)"
"$WIFORM" plan --sandbox --sandbox-dir "$DIR" -f "$DIR/identity.toml" | tee "$DIR/plan.txt"
grep -q "0 to add, 0 to change, 0 to replace, 0 to destroy" "$DIR/plan.txt" ||
  { echo "expected a plan of adoptions only" >&2; exit 1; }

step "wiform apply"
"$WIFORM" apply --sandbox --sandbox-dir "$DIR" --auto-approve -f "$DIR/identity.toml" | tail -n 2

step "wiform verify (the service account still gets its Azure token)"
"$WIFORM" verify --sandbox --sandbox-dir "$DIR" -f "$DIR/identity.toml"

step "wiform plan (nothing left to do)"
"$WIFORM" plan --sandbox --sandbox-dir "$DIR" -f "$DIR/identity.toml" --detailed-exitcode | tail -n 1
