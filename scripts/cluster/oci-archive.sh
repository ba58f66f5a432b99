# oci_archive NAME ROOTFS OUT CMD_JSON, sourced by images.sh and mcp-image.sh: tars ROOTFS as one
# gzip layer with a fixed mtime (so an archive's digest depends only on its files), a config, a
# manifest and an index whose one entry carries NAME, as an OCI image layout that
# `ctr -n k8s.io images import` takes under that name. Needs $work (a scratch directory) and log().
sha() { sha256sum "$1" | cut -d' ' -f1; }
size() { stat -c %s "$1"; }

oci_archive() {
  local name="$1" rootfs="$2" out="$3" cmd="$4" d; d="$(mktemp -d "$work/oci.XXXX")"
  mkdir -p "$d/blobs/sha256"
  tar --sort=name --mtime=@0 --owner=0 --group=0 --numeric-owner -C "$rootfs" -cf "$d/layer.tar" .
  gzip -n "-${OCI_GZIP_LEVEL:-9}" -c "$d/layer.tar" > "$d/layer.tar.gz"
  local diff_id layer; diff_id="$(sha "$d/layer.tar")"; layer="$(sha "$d/layer.tar.gz")"
  mv "$d/layer.tar.gz" "$d/blobs/sha256/$layer"
  printf '{"architecture":"amd64","os":"linux","config":{"Env":["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],"Cmd":%s},"rootfs":{"type":"layers","diff_ids":["sha256:%s"]}}' \
    "$cmd" "$diff_id" > "$d/config.json"
  local config; config="$(sha "$d/config.json")"
  printf '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:%s","size":%s},"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","digest":"sha256:%s","size":%s}]}' \
    "$config" "$(size "$d/config.json")" "$layer" "$(size "$d/blobs/sha256/$layer")" > "$d/manifest.json"
  local manifest; manifest="$(sha "$d/manifest.json")"
  mv "$d/config.json" "$d/blobs/sha256/$config"
  printf '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:%s","size":%s,"platform":{"architecture":"amd64","os":"linux"},"annotations":{"io.containerd.image.name":"%s","org.opencontainers.image.ref.name":"%s"}}]}' \
    "$manifest" "$(size "$d/manifest.json")" "$name" "${name##*:}" > "$d/index.json"
  mv "$d/manifest.json" "$d/blobs/sha256/$manifest"
  printf '{"imageLayoutVersion":"1.0.0"}' > "$d/oci-layout"
  rm "$d/layer.tar"
  tar --sort=name --mtime=@0 --owner=0 --group=0 --numeric-owner -C "$d" -cf "$out.tmp" oci-layout index.json blobs
  mv "$out.tmp" "$out"
  log "  image $name → $out ($(du -h "$out" | cut -f1))"
}
