#!/usr/bin/env bash
# Builds the operator image, loads it into a kind cluster and installs the Helm chart.
# Needs docker, kind, kubectl and helm on PATH. Idempotent: re-run it after changing the code.
#
#   deploy/kind/up.sh                 # cluster "agentrun", image agentrun-operator:dev
#   KIND_NODE_IMAGE=kindest/node:v1.36.0 deploy/kind/up.sh
#   kubectl create secret generic anthropic -n default --from-literal=api-key="$ANTHROPIC_API_KEY"
#   kubectl apply -f deploy/examples/research-agent.yaml
set -euo pipefail
cd "$(dirname "$0")/../.."

CLUSTER="${KIND_CLUSTER:-agentrun}"
IMAGE="${IMAGE:-agentrun-operator:dev}"
NAMESPACE="${NAMESPACE:-agentrun-system}"

for tool in docker kind kubectl helm; do
  command -v "$tool" >/dev/null || { echo "up.sh: $tool is not on PATH" >&2; exit 1; }
done

if ! kind get clusters | grep -qx "$CLUSTER"; then
  kind create cluster --name "$CLUSTER" --config deploy/kind/kind-config.yaml ${KIND_NODE_IMAGE:+--image "$KIND_NODE_IMAGE"}
fi
kubectl config use-context "kind-$CLUSTER" >/dev/null

docker build -t "$IMAGE" .
kind load docker-image "$IMAGE" --name "$CLUSTER"

# The image was loaded onto the nodes, never pushed: pullPolicy Never.
helm upgrade --install agentrun-operator charts/agentrun-operator \
  --namespace "$NAMESPACE" --create-namespace \
  --set image.repository="${IMAGE%:*}" --set image.tag="${IMAGE##*:}" --set image.pullPolicy=Never \
  --wait --timeout 3m
# A new image under the same tag is only picked up by new pods.
kubectl -n "$NAMESPACE" rollout restart deployment/agentrun-operator
kubectl -n "$NAMESPACE" rollout status deployment/agentrun-operator --timeout=3m

echo
echo "agentrun-operator is running in kind cluster $CLUSTER (namespace $NAMESPACE):"
kubectl -n "$NAMESPACE" get pods -l app.kubernetes.io/name=agentrun-operator
echo "Leader: $(kubectl -n "$NAMESPACE" get lease agentrun-operator -o jsonpath='{.spec.holderIdentity}' 2>/dev/null || echo '(electing)')"
