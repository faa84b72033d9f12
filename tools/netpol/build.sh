#!/usr/bin/env bash
# Builds np-guard's netpol-analyzer (the release tools/netpol/go.mod pins) from Go modules
# into a cache outside the checkout, for the proof that the NetworkPolicies isolate the
# backends (tests/test_isolation.py). .ci/run runs this; a fresh clone on the same machine
# reuses the cache in seconds. Prints the binary's path on the last line.
#
# The cache key hashes this folder (go.mod, go.sum, this script) and the Go version:
# "$OPSTRACE_NETPOL_CACHE/<key>/k8snetpolicy" (default cache ~/.cache/opstrace-netpol).
set -euo pipefail

MODULE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
CACHE="${OPSTRACE_NETPOL_CACHE:-$HOME/.cache/opstrace-netpol}"
PACKAGE=github.com/np-guard/netpol-analyzer
SECONDS=0

export CGO_ENABLED=0 GOTOOLCHAIN=local GOFLAGS=-mod=readonly
# Go is installed in /usr/local/go on these machines; a non-login shell may not have it.
command -v go >/dev/null || PATH="/usr/local/go/bin:$PATH"
command -v go >/dev/null || { echo "netpol: go is not installed (Go 1.25 or newer is needed)" >&2; exit 1; }

key=$( (cd "$MODULE" && find . -type f -print0 | sort -z | xargs -0 sha256sum; go version) |
  sha256sum | cut -c1-16)
dest="$CACHE/$key"
mkdir -p "$CACHE"
# One build at a time per cache (a second run waits for the first, then finds it built).
exec 9>"$CACHE/.lock"
flock 9

if [ -f "$dest/.complete" ]; then
  touch "$dest"  # most recently used: kept by the pruning below
  echo "netpol: $(cat "$dest/version"); cached, warm in ${SECONDS}s" >&2
  echo "$dest/k8snetpolicy"
  exit 0
fi

tmp="$dest.tmp.$$"
rm -rf "$tmp"
mkdir -p "$tmp/src"
trap 'rm -rf "$tmp"' EXIT
cp "$MODULE/go.mod" "$MODULE/go.sum" "$tmp/src/"
cd "$tmp/src"
version=$(go list -m -f '{{.Version}}' "$PACKAGE")
echo "netpol: building $PACKAGE $version into $dest (log $tmp/build.log)" >&2
if ! go build -trimpath -o "$tmp/k8snetpolicy" -ldflags "-s -w" "$PACKAGE/cmd/netpolicy" \
    >"$tmp/build.log" 2>&1; then
  echo "netpol: BUILD FAILED after ${SECONDS}s; last lines of the log:" >&2
  tail -n 30 "$tmp/build.log" >&2
  exit 1
fi
echo "netpol-analyzer $version" >"$tmp/version"
cd "$CACHE"
rm -rf "$tmp/src" "$dest"
mv "$tmp" "$dest"
touch "$dest/.complete"
# Keep the three most recently used builds (other checkouts may use older ones); delete
# the rest and any build left unfinished by a killed run.
find "$CACHE" -maxdepth 1 -name '*.tmp.*' -mmin +120 -exec rm -rf {} +
ls -1dt "$CACHE"/*/ | grep -v '\.tmp\.' | tail -n +4 | xargs -r rm -rf
echo "netpol: $(cat "$dest/version"); built, cold in ${SECONDS}s" >&2
echo "$dest/k8snetpolicy"
