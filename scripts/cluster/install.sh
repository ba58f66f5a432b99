#!/usr/bin/env bash
# Builds the local control plane (etcd, kube-apiserver, kube-controller-manager, kubectl, helm)
# from the Go module proxy into a versioned cache outside the repo. Idempotent: a binary that is
# already in the cache is not rebuilt. There is no Docker and no internet on our machines, so
# prebuilt release tarballs are not an option.
set -euo pipefail

K8S_VERSION="${K8S_VERSION:-1.36.3}"
ETCD_VERSION="${ETCD_VERSION:-3.6.16}"
HELM_VERSION="${HELM_VERSION:-3.19.5}"
CACHE_ROOT="${AGENTRUN_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/agentrun-operator}"
BIN_DIR="$CACHE_ROOT/bin/k8s-v$K8S_VERSION-etcd-v$ETCD_VERSION-helm-v$HELM_VERSION"
export CGO_ENABLED=0 GOFLAGS=-mod=mod GOTOOLCHAIN=local

log() { printf '[cluster:install %s] %s\n' "$(date +%H:%M:%S)" "$*"; }

command -v go >/dev/null || { echo "cluster:install needs Go (go1.24+) on PATH" >&2; exit 1; }
mkdir -p "$BIN_DIR"
work="$(mktemp -d "${TMPDIR:-/tmp}/agentrun-cluster-build.XXXXXX")"
trap 'rm -rf "$work"' EXIT

# Turns "old => ./staging/src/old" lines of an upstream go.mod into `go mod edit -replace` flags
# pinned to the staging/sibling module version, so the wrapper module resolves from the proxy.
replace_flags() { # $1 = upstream go.mod, $2 = module path prefix, $3 = version
  sed -n "s#^[[:space:]]*\($2[^[:space:]]*\) => \./.*#\1#p" "$1" | while read -r mod; do
    printf -- '-replace=%s=%s@%s\n' "$mod" "$mod" "$3"
  done
}

gomod_of() { go mod download -json "$1" | sed -n 's/.*"GoMod": "\(.*\)".*/\1/p'; }

build_kubernetes() {
  local missing=()
  for b in kube-apiserver kube-controller-manager kubectl; do
    [[ -x "$BIN_DIR/$b" ]] || missing+=("$b")
  done
  if [[ ${#missing[@]} -eq 0 ]]; then log "kubernetes v$K8S_VERSION: cached"; return; fi
  log "kubernetes v$K8S_VERSION: building ${missing[*]} (cold build takes several minutes on 2 cores)"
  local dir="$work/k8s" minor="${K8S_VERSION#*.}"; minor="${minor%%.*}"
  mkdir -p "$dir" && cd "$dir"
  go mod init agentrun.local/k8s-build >/dev/null 2>&1
  local upstream; upstream="$(gomod_of "k8s.io/kubernetes@v$K8S_VERSION")"
  # shellcheck disable=SC2046
  go mod edit -require="k8s.io/kubernetes@v$K8S_VERSION" \
    $(replace_flags "$upstream" 'k8s.io/' "v0.$minor.${K8S_VERSION##*.}")
  local godebug; godebug="$(sed -n 's/^godebug //p' "$upstream")"
  [[ -n "$godebug" ]] && go mod edit -godebug="$godebug"
  local v="v$K8S_VERSION" ldflags=""
  for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    ldflags+=" -X $pkg.gitVersion=$v -X $pkg.gitMajor=1 -X $pkg.gitMinor=$minor -X $pkg.gitTreeState=clean"
  done
  for b in "${missing[@]}"; do
    log "  go build k8s.io/kubernetes/cmd/$b"
    go build -trimpath -ldflags "-s -w $ldflags" -o "$BIN_DIR/$b.tmp" "k8s.io/kubernetes/cmd/$b"
    mv "$BIN_DIR/$b.tmp" "$BIN_DIR/$b"
  done
}

build_etcd() {
  if [[ -x "$BIN_DIR/etcd" ]]; then log "etcd v$ETCD_VERSION: cached"; return; fi
  log "etcd v$ETCD_VERSION: building"
  local dir="$work/etcd"; mkdir -p "$dir" && cd "$dir"
  go mod init agentrun.local/etcd-build >/dev/null 2>&1
  local upstream; upstream="$(gomod_of "go.etcd.io/etcd/server/v3@v$ETCD_VERSION")"
  # shellcheck disable=SC2046
  go mod edit -require="go.etcd.io/etcd/server/v3@v$ETCD_VERSION" \
    $(replace_flags "$upstream" 'go.etcd.io/etcd/' "v$ETCD_VERSION")
  go build -trimpath -ldflags "-s -w" -o "$BIN_DIR/etcd.tmp" go.etcd.io/etcd/server/v3
  mv "$BIN_DIR/etcd.tmp" "$BIN_DIR/etcd"
}

build_helm() {
  if [[ -x "$BIN_DIR/helm" ]]; then log "helm v$HELM_VERSION: cached"; return; fi
  log "helm v$HELM_VERSION: building"
  GOBIN="$work/helm-bin" go install -trimpath -ldflags "-s -w -X helm.sh/helm/v3/internal/version.version=v$HELM_VERSION" \
    "helm.sh/helm/v3/cmd/helm@v$HELM_VERSION"
  mv "$work/helm-bin/helm" "$BIN_DIR/helm"
}

start=$(date +%s)
build_etcd
build_kubernetes
build_helm
# A stable pointer the rest of the tooling reads, so it never has to know the versions.
ln -sfn "$BIN_DIR" "$CACHE_ROOT/bin/current"
log "done in $(( $(date +%s) - start ))s: $BIN_DIR ($(du -sh "$BIN_DIR" | cut -f1))"
ls -1 "$BIN_DIR"
