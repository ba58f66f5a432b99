#!/usr/bin/env bash
# Builds Jaeger v2 (the OpenTelemetry trace backend the tracing integration test exports to) from
# the Go module proxy into the versioned cache, with the module's all-in-one config next to it.
# Idempotent: a cached binary is not rebuilt (cold: ~7 min and ~3 GB of module + build cache).
set -euo pipefail

JAEGER_VERSION="${JAEGER_VERSION:-1.75.0}"
CACHE_ROOT="${AGENTRUN_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/agentrun-operator}"
DIR="$CACHE_ROOT/jaeger/v$JAEGER_VERSION"
export CGO_ENABLED=0 GOFLAGS=-mod=mod GOTOOLCHAIN=local

log() { printf '[cluster:jaeger %s] %s\n' "$(date +%H:%M:%S)" "$*"; }

if [[ -x "$DIR/jaeger" && -f "$DIR/all-in-one.yaml" ]]; then log "jaeger v$JAEGER_VERSION: cached"; exit 0; fi
command -v go >/dev/null || { echo "cluster:jaeger needs Go (go1.24+) on PATH" >&2; exit 1; }
log "jaeger v$JAEGER_VERSION: building (cold build takes ~7 minutes on 2 cores)"
mkdir -p "$DIR"
work="$(mktemp -d "${TMPDIR:-/tmp}/agentrun-jaeger-build.XXXXXX")"
trap 'rm -rf "$work"' EXIT
cd "$work"
go mod init agentrun.local/jaeger-build >/dev/null 2>&1
go get "github.com/jaegertracing/jaeger@v$JAEGER_VERSION"
src="$(go list -m -f '{{.Dir}}' github.com/jaegertracing/jaeger)"
go build -trimpath -ldflags "-s -w" -o "$DIR/jaeger.tmp" github.com/jaegertracing/jaeger/cmd/jaeger
cp "$src/cmd/jaeger/internal/all-in-one.yaml" "$DIR/all-in-one.yaml.tmp"
chmod u+w "$DIR/all-in-one.yaml.tmp"
mv "$DIR/all-in-one.yaml.tmp" "$DIR/all-in-one.yaml"
mv "$DIR/jaeger.tmp" "$DIR/jaeger"
log "done: $DIR ($(du -sh "$DIR" | cut -f1))"
