#!/usr/bin/env bash
# Builds what the project runs from Go modules into .engine/bin: the one script for every
# tool built from Go modules (docs/testing.md).
#
#   bash engine/build.sh                 # the engine: kube pulumi provider kwok (make engine)
#   bash engine/build.sh cortex netpol   # named parts only (make cortex, .ci/run, make charts)
#
# Each part is a Go module of ours under engine/<part>/ (its go.mod says why they cannot
# share one dependency graph) with a recipe below, and each is cached on its own, outside
# the checkout, so that a fresh clone on the same machine reuses it in seconds:
#   kube:     kube-apiserver, kube-controller-manager, kube-scheduler, kubectl, etcd
#   pulumi:   pulumi, pulumi-language-python (+ the SDK's two Python scripts beside it)
#   provider: pulumi-resource-kubernetes
#   kwok:     kwok, kwokctl (the local cluster's control plane, tools/cluster)
#   helm:     helm (the chart check, make charts)
#   cortex:   cortex (the metrics backend of the e2e tests and of the local instance)
#   netpol:   k8snetpolicy (np-guard's netpol-analyzer: the isolation proof)
# A part's cache key hashes its module folder (go.mod, go.sum, our mains), its recipe and
# the Go version: "$OPSTRACE_ENGINE_CACHE/<part>-<key>/bin" (default cache
# ~/.cache/opstrace-engine). .engine/bin holds symlinks to those binaries.
#
# Prints each binary's version and the elapsed time. A part that fails to build is
# reported with its error and the script exits non-zero; the other parts are still built.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
ENGINE="$ROOT/engine"
CACHE="${OPSTRACE_ENGINE_CACHE:-$HOME/.cache/opstrace-engine}"
BIN="$ROOT/.engine/bin"
ENGINE_PARTS=(kube pulumi provider kwok)
ALL_PARTS=(kube pulumi provider kwok helm cortex netpol)
# The pulumi-kubernetes release that the provider commit pinned in engine/provider/go.mod
# became (its last commit before the v4.25.0 release of 2026-01-16); requirements.txt pins
# the pip package pulumi-kubernetes to the same release.
K8S_PROVIDER_VERSION="4.25.0"

export CGO_ENABLED=0 GOTOOLCHAIN=local GOFLAGS=-mod=readonly
# Go is installed in /usr/local/go on these machines; a non-login shell may not have it.
command -v go >/dev/null || PATH="/usr/local/go/bin:$PATH"
command -v go >/dev/null || { echo "engine: go is not installed (Go 1.26 is needed)" >&2; exit 1; }

start=$(date +%s)
MAIN_PID=$$
mkdir -p "$CACHE" "$BIN"

part_key() { # part -> hash of everything its build depends on: its module, its recipe
  (cd "$ENGINE" && find "$1" -type f ! -name "*-embed.json" -print0 | sort -z | xargs -0 sha256sum
   declare -f "build_$1"; echo "$K8S_PROVIDER_VERSION"; go version) | sha256sum | cut -c1-16
}

build_pulumi() { # out_dir
  local out=$1 src=$1/src
  cp -r "$ENGINE/pulumi" "$src"
  cd "$src"
  local pulumi_version sdk_dir
  go mod download github.com/pulumi/pulumi/sdk/v3
  pulumi_version=$(go list -m -f '{{.Version}}' github.com/pulumi/pulumi/pkg/v3)
  sdk_dir=$(go list -m -f '{{.Dir}}' github.com/pulumi/pulumi/sdk/v3)
  go build -trimpath -o "$out/bin/" \
    -ldflags "-s -w -X github.com/pulumi/pulumi/sdk/v3/go/common/version.Version=$pulumi_version" \
    github.com/pulumi/pulumi/pkg/v3/cmd/pulumi ./cmd/pulumi-language-python
  install -m 0755 "$sdk_dir/python/cmd/pulumi-language-python-exec" \
    "$sdk_dir/python/dist/pulumi-resource-pulumi-python" "$out/bin/"
}

build_provider() { # out_dir
  local out=$1 src=$1/src
  cp -r "$ENGINE/provider" "$src"
  cd "$src"
  local provider_dir
  go mod download github.com/pulumi/pulumi-kubernetes/provider/v4
  provider_dir=$(go list -m -f '{{.Dir}}' github.com/pulumi/pulumi-kubernetes/provider/v4)
  # The provider's own main embeds files its Makefile generates; generate them here.
  python3 - "$provider_dir/cmd/pulumi-resource-kubernetes" cmd/pulumi-resource-kubernetes \
    "$K8S_PROVIDER_VERSION" <<'PY'
import json, sys
src, dst, version = sys.argv[1:]
schema = json.load(open(f"{src}/schema.json"))
schema["version"] = version
json.dump(schema, open(f"{dst}/schema-embed.json", "w"), separators=(",", ":"))
mapping = json.load(open(f"{src}/terraform-mapping.json"))
json.dump(mapping, open(f"{dst}/terraform-mapping-embed.json", "w"), separators=(",", ":"))
PY
  go build -trimpath -o "$out/bin/" -ldflags "-s -w \
    -X github.com/pulumi/pulumi-kubernetes/provider/v4/pkg/version.Version=$K8S_PROVIDER_VERSION" \
    ./cmd/pulumi-resource-kubernetes
}

build_kube() { # out_dir
  local out=$1 src=$1/src
  cp -r "$ENGINE/kube" "$src"
  cd "$src"
  local kv major minor v=k8s.io/component-base/version c=k8s.io/client-go/pkg/version
  kv=$(go list -m -f '{{.Version}}' k8s.io/kubernetes)
  major=${kv#v}; major=${major%%.*}
  minor=${kv#v"$major".}; minor=${minor%%.*}
  local ld="-s -w"
  for pkg in $v $c; do
    ld+=" -X $pkg.gitVersion=$kv -X $pkg.gitMajor=$major -X $pkg.gitMinor=$minor"
    ld+=" -X $pkg.gitTreeState=clean -X $pkg.buildDate=1970-01-01T00:00:00Z"
  done
  go build -trimpath -o "$out/bin/" -ldflags "$ld" \
    k8s.io/kubernetes/cmd/kube-apiserver k8s.io/kubernetes/cmd/kube-controller-manager \
    k8s.io/kubernetes/cmd/kube-scheduler k8s.io/kubernetes/cmd/kubectl ./cmd/etcd
}

build_kwok() { # out_dir
  local out=$1 src=$1/src
  cp -r "$ENGINE/kwok" "$src"
  cd "$src"
  go build -trimpath -o "$out/bin/" -ldflags "-s -w" sigs.k8s.io/kwok/cmd/kwok \
    sigs.k8s.io/kwok/cmd/kwokctl
}

build_helm() { # out_dir
  local out=$1 src=$1/src
  cp -r "$ENGINE/helm" "$src"
  cd "$src"
  local version
  version=$(go list -m -f '{{.Version}}' helm.sh/helm/v4)
  go build -trimpath -o "$out/bin/" \
    -ldflags "-s -w -X helm.sh/helm/v4/internal/version.version=$version" helm.sh/helm/v4/cmd/helm
}

build_cortex() { # out_dir
  local out=$1 src=$1/src
  cp -r "$ENGINE/cortex" "$src"
  cd "$src"
  local version
  version=$(go list -m -f '{{.Version}}' github.com/cortexproject/cortex)
  # The build tags of Cortex's own Makefile: `slicelabels` is the label layout Cortex's code
  # converts to and from without copying, so it is not optional.
  go build -trimpath -tags netgo,slicelabels -o "$out/bin/cortex" \
    -ldflags "-s -w -X main.Version=${version#v}" github.com/cortexproject/cortex/cmd/cortex
}

build_netpol() { # out_dir
  local out=$1 src=$1/src
  cp -r "$ENGINE/netpol" "$src"
  cd "$src"
  go build -trimpath -o "$out/bin/k8snetpolicy" -ldflags "-s -w" \
    github.com/np-guard/netpol-analyzer/cmd/netpolicy
  go list -m -f 'netpol-analyzer {{.Version}}' github.com/np-guard/netpol-analyzer >"$out/version"
}

PARTS=("$@")
[ "${#PARTS[@]}" -gt 0 ] || PARTS=("${ENGINE_PARTS[@]}")
for part in "${PARTS[@]}"; do
  declare -F "build_$part" >/dev/null || {
    echo "engine: no part $part (parts: ${ALL_PARTS[*]})" >&2
    exit 2
  }
done

ensure_part() { # part -> builds it into the cache unless it is there
  local part=$1 key dir tmp t0
  key=$(part_key "$part")
  dir="$CACHE/$part-$key"
  if [ -f "$dir/.complete" ]; then
    touch "$dir"  # most recently used: kept by prune
    echo "engine: $part: cached in $dir" >&2
    return 0
  fi
  tmp="$dir.tmp.$$"
  rm -rf "$tmp"; mkdir -p "$tmp/bin"
  t0=$(date +%s)
  echo "engine: $part: building into $dir (log $tmp/build.log)" >&2
  # Not inside `if`: there bash would ignore `set -e` in the build function.
  local rc=0
  set +e
  ( set -e; "build_$part" "$tmp" ) >"$tmp/build.log" 2>&1
  rc=$?
  set -e
  if [ "$rc" -eq 0 ]; then
    chmod -R u+w "$tmp/src" && rm -rf "$tmp/src" "$dir"
    mv "$tmp" "$dir"
    touch "$dir/.complete"
    echo "$part" >>"$CACHE/.built.$MAIN_PID"
    echo "engine: $part: built in $(( $(date +%s) - t0 ))s" >&2
  else
    echo "engine: $part: BUILD FAILED after $(( $(date +%s) - t0 ))s; last lines of $tmp/build.log:" >&2
    tail -n 30 "$tmp/build.log" >&2
    return 1
  fi
}

# One build at a time per cache (a second `make engine` waits for the first).
exec 9>"$CACHE/.lock"
flock 9

# The parts build in parallel: each `go build` already uses every core, but linking is
# serial, and overlapping the parts keeps both cores busy.
failed=()
declare -A pids
for part in "${PARTS[@]}"; do ensure_part "$part" & pids[$part]=$!; done
for part in "${PARTS[@]}"; do wait "${pids[$part]}" || failed+=("$part"); done

# Keep the three most recently used builds of each part (other checkouts may use older
# ones); delete the rest and any build left unfinished by a killed run.
for part in "${ALL_PARTS[@]}"; do
  find "$CACHE" -maxdepth 1 -name "$part-*.tmp.*" -mmin +120 -exec rm -rf {} +
  # find, not ls | grep: a part never built matches nothing, which must not fail the script.
  find "$CACHE" -maxdepth 1 -name "$part-*" ! -name '*.tmp.*' -printf '%T@ %p\n' \
    | sort -rn | tail -n +4 | cut -d' ' -f2- | xargs -r rm -rf
done

# .engine/bin: one symlink per binary of every part that is built (whichever were asked for).
find "$BIN" -maxdepth 1 -type l -delete
for part in "${ALL_PARTS[@]}"; do
  dir="$CACHE/$part-$(part_key "$part")"
  [ -f "$dir/.complete" ] || continue
  for f in "$dir"/bin/*; do ln -sf "$f" "$BIN/$(basename "$f")"; done
done

first() { "$@" 2>&1 | sed -n 1p; }
modversion() { go version -m "$1" | awk -v m="$2" '$2 == m {print $3}'; }
echo "engine: binaries in $BIN:"
if [ -x "$BIN/pulumi" ]; then
  echo "  pulumi                      $(first "$BIN/pulumi" version)"
  echo "  pulumi-language-python      $(modversion "$BIN/pulumi-language-python" github.com/pulumi/pulumi/sdk/v3) (ours, on pulumi sdk/v3)"
fi
if [ -x "$BIN/pulumi-resource-kubernetes" ]; then
  echo "  pulumi-resource-kubernetes  $K8S_PROVIDER_VERSION (provider/v4 $(modversion "$BIN/pulumi-resource-kubernetes" github.com/pulumi/pulumi-kubernetes/provider/v4))"
fi
if [ -x "$BIN/kube-apiserver" ]; then
  echo "  kube-apiserver              $(first "$BIN/kube-apiserver" --version)"
  echo "  kube-controller-manager     $(first "$BIN/kube-controller-manager" --version)"
  echo "  kube-scheduler              $(first "$BIN/kube-scheduler" --version)"
  echo "  kubectl                     $(first "$BIN/kubectl" version --client)"
  echo "  etcd                        $(first "$BIN/etcd" --version)"
fi
if [ -x "$BIN/kwok" ]; then
  echo "  kwok                        $(first "$BIN/kwok" --version)"
  echo "  kwokctl                     $(first "$BIN/kwokctl" --version)"
fi
if [ -x "$BIN/helm" ]; then
  echo "  helm                        $("$BIN/helm" version --short)"
fi
if [ -x "$BIN/cortex" ]; then
  echo "  cortex                      $("$BIN/cortex" -version 2>/dev/null | sed -n 1p)"
fi
if [ -x "$BIN/k8snetpolicy" ]; then
  echo "  k8snetpolicy                $(cat "$(dirname "$(readlink -f "$BIN/k8snetpolicy")")/../version")"
fi
built=$(cat "$CACHE"/.built.$$ 2>/dev/null || true); rm -f "$CACHE"/.built.$$
if [ -n "$built" ]; then
  echo "engine: done in $(( $(date +%s) - start ))s (built:$(echo "$built" | tr '\n' ' ' | sed 's/^/ /;s/ $//'))"
else
  echo "engine: done in $(( $(date +%s) - start ))s (warm: every part cached)"
fi
if [ "${#failed[@]}" -gt 0 ]; then
  echo "engine: FAILED to build: ${failed[*]}" >&2
  exit 1
fi
