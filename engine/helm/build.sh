#!/usr/bin/env bash
# Builds Helm from Go modules (this folder's go.mod) for the chart check, `make charts`.
#
# Cached like the engine's parts (../build.sh), outside the checkout, so that a fresh clone
# on the same machine reuses it in seconds: "$OPSTRACE_ENGINE_CACHE/helm-<key>/bin/helm"
# (default cache ~/.cache/opstrace-engine), the key hashing this folder (go.mod, go.sum,
# this script) and the Go version; .engine/bin/helm links to it. Not a part of
# `make engine`, so that CI, which never runs the chart check, does not build it.
# Prints the binary's version and, on the last line, its path.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
CACHE="${OPSTRACE_ENGINE_CACHE:-$HOME/.cache/opstrace-engine}"
BIN="$ROOT/.engine/bin"

export CGO_ENABLED=0 GOTOOLCHAIN=local GOFLAGS=-mod=readonly
command -v go >/dev/null || PATH="/usr/local/go/bin:$PATH"
command -v go >/dev/null || { echo "helm: go is not installed (Go 1.26 is needed)" >&2; exit 1; }

SECONDS=0
key=$( (cd "$HERE" && find . -type f -print0 | sort -z | xargs -0 sha256sum; go version) |
  sha256sum | cut -c1-16)
dir="$CACHE/helm-$key"
mkdir -p "$CACHE" "$BIN"
# One build at a time (its own lock: the engine's may be held for half an hour).
exec 9>"$CACHE/.lock-helm"
flock 9
if [ ! -f "$dir/.complete" ]; then
  tmp="$dir.tmp.$$"
  rm -rf "$tmp"
  mkdir -p "$tmp/bin"
  echo "helm: building into $dir (log $tmp/build.log; a few minutes cold)" >&2
  version=$(cd "$HERE" && go list -m -f '{{.Version}}' helm.sh/helm/v4)
  if ! (cd "$HERE" && go build -trimpath -o "$tmp/bin/" \
      -ldflags "-s -w -X helm.sh/helm/v4/internal/version.version=$version" \
      helm.sh/helm/v4/cmd/helm) >"$tmp/build.log" 2>&1; then
    echo "helm: BUILD FAILED after ${SECONDS}s; last lines of $tmp/build.log:" >&2
    tail -n 30 "$tmp/build.log" >&2
    exit 1
  fi
  rm -rf "$dir"
  mv "$tmp" "$dir"
  touch "$dir/.complete"
  echo "helm: built in ${SECONDS}s" >&2
else
  touch "$dir"
fi
# Keep the three most recently used builds; other checkouts may use older ones.
ls -1dt "$CACHE"/helm-* 2>/dev/null | grep -v '\.tmp\.' | tail -n +4 | xargs -r rm -rf
ln -sf "$dir/bin/helm" "$BIN/helm"
echo "helm: $("$BIN/helm" version --short) in ${SECONDS}s" >&2
echo "$BIN/helm"
