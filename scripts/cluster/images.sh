#!/usr/bin/env bash
# Builds the OCI image archives a real node of the local cluster imports into its containerd at
# start (there is no registry here): `ctr -n k8s.io images import` takes each archive under the
# name in its index. Every image name our tests, examples and dev stack use exists this way:
#
#   registry.k8s.io/pause:3.10.1       Kubernetes' own build/pause/linux/pause.c, gcc -static
#   busybox:1.37, busybox:1.36         Debian's busybox-static with a symlink per applet
#   curlimages/curl:8.11.1             STAND-IN: that busybox plus Debian's curl and the shared
#                                      libraries it links (not the upstream curlimages image)
#
# Called by install.sh with BIN_DIR and K8S_VERSION; archives go to $BIN_DIR/images. A warm run
# (every archive present) is a no-op. Only the layer content is ours: images are single-layer,
# linux/amd64, with a fixed mtime, so an archive's digest depends only on its files.
set -euo pipefail
: "${BIN_DIR:?}" "${K8S_VERSION:?}"
IMAGES="$BIN_DIR/images"
mkdir -p "$IMAGES"
log() { printf '[cluster:install %s] %s\n' "$(date +%H:%M:%S)" "$*"; }

# Image names (as the kubelet asks for them) → the archive file that holds them.
declare -A ARCHIVE=(
  [registry.k8s.io/pause:3.10.1]=pause.tar
  [docker.io/library/busybox:1.37]=busybox-1.37.tar
  [docker.io/library/busybox:1.36]=busybox-1.36.tar
  [docker.io/curlimages/curl:8.11.1]=curl-8.11.1.tar
)

missing=false
for name in "${!ARCHIVE[@]}"; do [[ -f "$IMAGES/${ARCHIVE[$name]}" ]] || missing=true; done
if [[ "$missing" == false ]]; then log "images: cached ($IMAGES)"; exit 0; fi

work="$(mktemp -d "${TMPDIR:-/tmp}/agentrun-images.XXXXXX")"
trap 'rm -rf "$work"' EXIT

# shellcheck source=scripts/cluster/oci-archive.sh
source "$(dirname "$0")/oci-archive.sh"

# pause: the sandbox image's one job is to hold the pod's namespaces and reap zombies.
pause_rootfs="$work/pause"
mkdir -p "$pause_rootfs"
pause_src="$(go mod download -json "k8s.io/kubernetes@v$K8S_VERSION" | sed -n 's/.*"Dir": "\(.*\)".*/\1/p')/build/pause/linux/pause.c"
gcc -Os -static -DVERSION="v3.10.1-agentrun" -o "$pause_rootfs/pause" "$pause_src"
strip "$pause_rootfs/pause"
oci_archive registry.k8s.io/pause:3.10.1 "$pause_rootfs" "$IMAGES/pause.tar" '["/pause"]'

# busybox: one static binary and a symlink per applet; /tmp and the passwd entries of root and
# the UID tool pods run as (65532), so `id` and `whoami` have names.
busybox_rootfs="$work/busybox"
mkdir -p "$busybox_rootfs"/{bin,etc,tmp,root,home,var,usr/bin}
cp /bin/busybox "$busybox_rootfs/bin/busybox"
for applet in $(/bin/busybox --list); do
  [[ "$applet" == busybox ]] || ln -sf busybox "$busybox_rootfs/bin/$applet"
done
chmod 1777 "$busybox_rootfs/tmp"
printf 'root:x:0:0:root:/root:/bin/sh\nnonroot:x:65532:65532:nonroot:/home/nonroot:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n' > "$busybox_rootfs/etc/passwd"
printf 'root:x:0:\nnonroot:x:65532:\nnobody:x:65534:\n' > "$busybox_rootfs/etc/group"
# test/integration/examples.test.ts expects exactly this (shell-with-approval.yaml reads it).
printf 'NAME="BusyBox"\nID=busybox\nVERSION_ID=1.37\nPRETTY_NAME="BusyBox (agentrun-operator local image from Debian busybox-static)"\n' > "$busybox_rootfs/etc/os-release"
oci_archive docker.io/library/busybox:1.37 "$busybox_rootfs" "$IMAGES/busybox-1.37.tar" '["sh"]'
oci_archive docker.io/library/busybox:1.36 "$busybox_rootfs" "$IMAGES/busybox-1.36.tar" '["sh"]'

# curl (stand-in for curlimages/curl): busybox plus Debian's curl and its shared libraries.
curl_rootfs="$work/curl"
cp -a "$busybox_rootfs" "$curl_rootfs"
cp /usr/bin/curl "$curl_rootfs/usr/bin/curl"
for lib in $(ldd /usr/bin/curl | grep -o '/[^ ]*'); do
  mkdir -p "$curl_rootfs$(dirname "$lib")"
  cp -L "$lib" "$curl_rootfs$lib"
done
[[ -f /etc/ssl/certs/ca-certificates.crt ]] && install -D -m 0644 /etc/ssl/certs/ca-certificates.crt "$curl_rootfs/etc/ssl/certs/ca-certificates.crt"
oci_archive docker.io/curlimages/curl:8.11.1 "$curl_rootfs" "$IMAGES/curl-8.11.1.tar" '["curl"]'
