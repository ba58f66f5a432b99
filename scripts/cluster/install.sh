#!/usr/bin/env bash
# Builds the local control plane (etcd, kube-apiserver, kube-controller-manager, kube-scheduler,
# kubectl, helm) and a real node (kubelet, containerd + its runc shim, CNI plugins, crictl; runc
# from Debian) from the Go module proxy into a versioned cache outside the repo, plus the local
# OCI images tool pods use (scripts/cluster/images.sh). Idempotent: a binary or image that is
# already in the cache is not rebuilt. There is no Docker and no internet on our machines, so
# prebuilt release tarballs and registries are not an option.
#
#   --node-only   build only the real node's pieces and images (not etcd, the apiserver, helm…)
set -euo pipefail

SCRIPT_DIR="$(cd "$(dirname "$0")" && pwd)"
NODE_ONLY=false
[[ "${1:-}" == "--node-only" ]] && NODE_ONLY=true

K8S_VERSION="${K8S_VERSION:-1.36.3}"
ETCD_VERSION="${ETCD_VERSION:-3.6.16}"
HELM_VERSION="${HELM_VERSION:-3.19.5}"
CONTAINERD_VERSION="${CONTAINERD_VERSION:-2.3.7}"
CNI_PLUGINS_VERSION="${CNI_PLUGINS_VERSION:-1.9.1}"
CRICTL_VERSION="${CRICTL_VERSION:-1.36.0}"
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

build_kubernetes() { # $@ = the cmd/ binaries to build
  local missing=()
  for b in "$@"; do
    [[ -x "$BIN_DIR/$b" ]] || missing+=("$b")
  done
  if [[ ${#missing[@]} -eq 0 ]]; then log "kubernetes v$K8S_VERSION: cached"; return; fi
  log "kubernetes v$K8S_VERSION: building ${missing[*]} (cold build takes several minutes on 2 cores)"
  local dir="$work/k8s" minor="${K8S_VERSION#*.}"; minor="${minor%%.*}"
  mkdir -p "$dir" && cd "$dir"
  # Called twice (control plane, then node): the wrapper module exists after the first call.
  [[ -f go.mod ]] || go mod init agentrun.local/k8s-build >/dev/null
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

# containerd 2.x (Kubernetes 1.36 needs ≥ 2.2) has no replace directives: `go install` works.
build_containerd() {
  local missing=()
  for b in containerd containerd-shim-runc-v2 ctr; do [[ -x "$BIN_DIR/$b" ]] || missing+=("$b"); done
  if [[ ${#missing[@]} -eq 0 ]]; then log "containerd v$CONTAINERD_VERSION: cached"; return; fi
  log "containerd v$CONTAINERD_VERSION: building ${missing[*]}"
  local ldflags="-s -w -X github.com/containerd/containerd/v2/version.Version=v$CONTAINERD_VERSION"
  for b in "${missing[@]}"; do
    GOBIN="$work/containerd-bin" go install -trimpath -ldflags "$ldflags" "github.com/containerd/containerd/v2/cmd/$b@v$CONTAINERD_VERSION"
    mv "$work/containerd-bin/$b" "$BIN_DIR/$b"
  done
}

build_cni() {
  local cni="$BIN_DIR/cni" missing=()
  for p in main/bridge main/loopback ipam/host-local meta/portmap; do [[ -x "$cni/${p#*/}" ]] || missing+=("$p"); done
  if [[ ${#missing[@]} -eq 0 ]]; then log "CNI plugins v$CNI_PLUGINS_VERSION: cached"; return; fi
  log "CNI plugins v$CNI_PLUGINS_VERSION: building ${missing[*]}"
  mkdir -p "$cni"
  for p in "${missing[@]}"; do
    GOBIN="$work/cni-bin" go install -trimpath -ldflags "-s -w" "github.com/containernetworking/plugins/plugins/$p@v$CNI_PLUGINS_VERSION"
    mv "$work/cni-bin/${p#*/}" "$cni/${p#*/}"
  done
}

build_crictl() {
  if [[ -x "$BIN_DIR/crictl" ]]; then log "crictl v$CRICTL_VERSION: cached"; return; fi
  log "crictl v$CRICTL_VERSION: building"
  GOBIN="$work/crictl-bin" go install -trimpath -ldflags "-s -w -X sigs.k8s.io/cri-tools/pkg/version.Version=v$CRICTL_VERSION" \
    "sigs.k8s.io/cri-tools/cmd/crictl@v$CRICTL_VERSION"
  mv "$work/crictl-bin/crictl" "$BIN_DIR/crictl"
}

# runc (the OCI runtime the shim calls) and busybox-static (the tool images' userland) come from
# Debian: building runc needs cgo and libseccomp. --no-install-recommends, or apt pulls criu.
install_host_packages() {
  local missing=()
  command -v runc >/dev/null || missing+=(runc)
  [[ -x /bin/busybox ]] || missing+=(busybox-static)
  command -v gcc >/dev/null || missing+=(gcc libc6-dev)
  command -v curl >/dev/null || missing+=(curl)
  # The operator image test builds the Dockerfile with buildah on a debootstrap base stand-in.
  command -v buildah >/dev/null || missing+=(buildah)
  command -v debootstrap >/dev/null || missing+=(debootstrap)
  # The console's browser tests drive Debian's Chromium with playwright-core (no browser download).
  [[ -x /usr/bin/chromium ]] || missing+=(chromium)
  if [[ ${#missing[@]} -eq 0 ]]; then log "runc, busybox-static, gcc, curl, buildah, debootstrap, chromium: installed"; return; fi
  if [[ $(id -u) -ne 0 ]] || ! command -v apt-get >/dev/null; then
    echo "cluster:install: the real node and the tests need ${missing[*]}: install them (Debian: apt-get install -y --no-install-recommends ${missing[*]})" >&2
    exit 1
  fi
  log "apt-get install ${missing[*]}"
  apt-get install -y --no-install-recommends "${missing[@]}" >/dev/null \
    || { apt-get update -qq && apt-get install -y --no-install-recommends "${missing[@]}" >/dev/null; }
}

build_helm() {
  if [[ -x "$BIN_DIR/helm" ]]; then log "helm v$HELM_VERSION: cached"; return; fi
  log "helm v$HELM_VERSION: building"
  GOBIN="$work/helm-bin" go install -trimpath -ldflags "-s -w -X helm.sh/helm/v3/internal/version.version=v$HELM_VERSION" \
    "helm.sh/helm/v3/cmd/helm@v$HELM_VERSION"
  mv "$work/helm-bin/helm" "$BIN_DIR/helm"
}

start=$(date +%s)
if [[ "$NODE_ONLY" == false ]]; then
  build_etcd
  build_kubernetes kube-apiserver kube-controller-manager kubectl
  build_helm
fi
install_host_packages
build_containerd
build_cni
build_crictl
K8S_VERSION="$K8S_VERSION" BIN_DIR="$BIN_DIR" bash "$SCRIPT_DIR/images.sh"
# The MCP reference servers' image managed MCPServers run (needs npm ci done: Node 24 comes from it).
BIN_DIR="$BIN_DIR" bash "$SCRIPT_DIR/mcp-image.sh"
build_kubernetes kube-scheduler kubelet
# Jaeger v2, the trace backend of test/integration/tracing.test.ts (its own versioned cache).
[[ "$NODE_ONLY" == false ]] && bash "$SCRIPT_DIR/jaeger.sh"
# A stable pointer the rest of the tooling reads, so it never has to know the versions.
ln -sfn "$BIN_DIR" "$CACHE_ROOT/bin/current"
log "done in $(( $(date +%s) - start ))s: $BIN_DIR ($(du -sh "$BIN_DIR" | cut -f1))"
ls -1 "$BIN_DIR"
