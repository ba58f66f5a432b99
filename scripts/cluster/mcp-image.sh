#!/usr/bin/env bash
# Builds agentrun.dev/mcp-servers:2026.8.31, the image managed MCPServers of our tests and
# examples run (deploy/examples/mcp-managed.yaml): Node 24 (the repo's pinned `node` devDependency)
# with the shared libraries it links, busybox for /bin/sh (supergateway spawns its stdio server
# through a shell), and /opt/mcp/node_modules from scripts/cluster/mcp-servers/package-lock.json:
#
#   server-everything   speaks Streamable HTTP itself (`... dist/index.js streamableHttp`, PORT)
#   server-memory       stdio only: served through supergateway (stdio ↔ Streamable HTTP)
#   server-filesystem   stdio only: likewise
#
# No registry and no Docker here: like images.sh, one single-layer OCI archive with a fixed
# mtime, imported into the real nodes' containerd (test/harness/real-node/state.ts). Warm is a
# no-op: the archive is rebuilt only when the lockfile, this script or the Node binary changed.
#
#   BIN_DIR=... bash scripts/cluster/mcp-image.sh      (install.sh passes BIN_DIR)
set -euo pipefail
: "${BIN_DIR:?}"
SCRIPT_DIR="$(cd "$(dirname "$0")" && pwd)"
REPO="$(cd "$SCRIPT_DIR/../.." && pwd)"
NAME=agentrun.dev/mcp-servers:2026.8.31
OUT="$BIN_DIR/images/mcp-servers-2026.8.31.tar"
log() { printf '[cluster:install %s] %s\n' "$(date +%H:%M:%S)" "$*"; }

NODE_BIN="$(readlink -f "$REPO/node_modules/node/bin/node" 2>/dev/null || true)"
[[ -x "$NODE_BIN" ]] || { echo "mcp-image: $REPO/node_modules/node/bin/node is missing: run npm ci first" >&2; exit 1; }
stamp="$(cat "$SCRIPT_DIR/mcp-servers/package-lock.json" "$0" | sha256sum | cut -c1-16)-$("$NODE_BIN" --version)"
if [[ -f "$OUT" && "$(cat "$OUT.stamp" 2>/dev/null)" == "$stamp" ]]; then log "image $NAME: cached ($OUT)"; exit 0; fi

start=$(date +%s)
log "image $NAME: building"
mkdir -p "$BIN_DIR/images"
work="$(mktemp -d "${TMPDIR:-/tmp}/agentrun-mcp-image.XXXXXX")"
trap 'rm -rf "$work"' EXIT
root="$work/rootfs"
mkdir -p "$root"/{bin,etc,tmp,home/nonroot,usr/local/bin,opt/mcp}
chmod 1777 "$root/tmp"

cp /bin/busybox "$root/bin/busybox"
for applet in sh env cat ls; do ln -sf busybox "$root/bin/$applet"; done
mkdir -p "$root/usr/bin" && ln -sf /bin/env "$root/usr/bin/env"
printf 'root:x:0:0:root:/root:/bin/sh\nnonroot:x:65532:65532:nonroot:/home/nonroot:/bin/sh\n' > "$root/etc/passwd"
printf 'root:x:0:\nnonroot:x:65532:\n' > "$root/etc/group"

# Node without its debug info (the binary shrinks from ~120 MB), and the libraries it links.
strip -o "$root/usr/local/bin/node" "$NODE_BIN"
for lib in $(ldd "$NODE_BIN" | grep -o '/[^ ]*'); do
  mkdir -p "$root$(dirname "$lib")"
  cp -L "$lib" "$root$lib"
done

cp "$SCRIPT_DIR/mcp-servers/package.json" "$SCRIPT_DIR/mcp-servers/package-lock.json" "$root/opt/mcp/"
(cd "$root/opt/mcp" && npm ci --omit=dev --ignore-scripts --no-audit --no-fund --loglevel=error)
rm -f "$root/opt/mcp/package-lock.json"
# Both memory and filesystem write under /tmp (an emptyDir in the pod; the root filesystem is read-only).
"$root/usr/local/bin/node" -e 'process.exit(0)'

# shellcheck source=scripts/cluster/oci-archive.sh
OCI_GZIP_LEVEL=6
source "$SCRIPT_DIR/oci-archive.sh"
oci_archive "$NAME" "$root" "$OUT" \
  '["node","/opt/mcp/node_modules/@modelcontextprotocol/server-everything/dist/index.js","streamableHttp"]'
echo "$stamp" > "$OUT.stamp"
log "image $NAME: built in $(( $(date +%s) - start ))s ($(du -h "$OUT" | cut -f1))"
