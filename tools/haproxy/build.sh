#!/usr/bin/env bash
# Put HAProxy $VERSION (the LTS release the gateway image pins) into a cache outside the
# checkout, from Debian's archive, verified by apt. `make haproxy` runs this; a fresh clone
# on the same machine reuses the cache. Prints the binary's path on the last line.
#
# Route 1: Debian's source package of the release: apt checks the signed Sources index,
#   the pristine upstream tarball is built with the stock image's make options.
# Route 2, when the source files cannot be downloaded: Debian's binary package of the
#   same release plus the libraries it was linked with (from unstable), unpacked into the
#   cache and pointed at them with patchelf (this host's glibc is older).
set -euo pipefail

VERSION=${OPSTRACE_HAPROXY_VERSION:-3.4.7}
DEBIAN_VERSION=${OPSTRACE_HAPROXY_DEBIAN_VERSION:-$VERSION-1}
SUITE=${OPSTRACE_HAPROXY_SUITE:-experimental}  # where Debian carries the 3.4 branch
CACHE=${OPSTRACE_HAPROXY_CACHE:-$HOME/.cache/opstrace-haproxy}
DEST=$CACHE/$VERSION
KEYRING=/usr/share/keyrings/debian-archive-keyring.gpg
SECONDS=0

is_wanted() { [[ "$("$DEST/haproxy" -v 2>/dev/null || true)" == *"version $VERSION"* ]]; }
if is_wanted; then
  "$DEST/haproxy" -vv | sed -n 1,10p
  echo "haproxy $VERSION: cached, warm in ${SECONDS}s"
  echo "$DEST/haproxy"
  exit 0
fi

# The Debian mirror this machine already uses (override: OPSTRACE_DEBIAN_MIRROR).
mirror=${OPSTRACE_DEBIAN_MIRROR:-}
[ -n "$mirror" ] || mirror=$(cat /etc/apt/sources.list /etc/apt/sources.list.d/*.list \
  /etc/apt/sources.list.d/*.sources 2>/dev/null |
  grep -oE 'https?://[^[:space:]]+/debian/?([[:space:]]|$)' | sed -n 1p | tr -d '[:space:]') || true
[ -n "$mirror" ] || { echo "error: no Debian mirror configured; set OPSTRACE_DEBIAN_MIRROR" >&2; exit 1; }

# A private apt state: the machine's own apt sources and state stay untouched.
apt_dir=$CACHE/apt
mkdir -p "$apt_dir/lists/partial" "$apt_dir/cache/archives/partial" "$apt_dir/none"
cat >"$apt_dir/sources.list" <<EOF
deb [signed-by=$KEYRING] $mirror unstable main
deb [signed-by=$KEYRING] $mirror $SUITE main
deb-src [signed-by=$KEYRING] $mirror $SUITE main
EOF
apt_opts=(-o "Dir::Etc::sourcelist=$apt_dir/sources.list" -o "Dir::Etc::sourceparts=$apt_dir/none"
  -o "Dir::Etc::preferencesparts=$apt_dir/none" -o "Dir::State::Lists=$apt_dir/lists"
  -o "Dir::Cache=$apt_dir/cache" -o Dir::State::status=/dev/null -o APT::Sandbox::User=root)
apt-get "${apt_opts[@]}" update -qq

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }
need() {  # Debian packages of this machine needed for the build itself
  local missing=() pkg
  for pkg in "$@"; do dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'ok installed' || missing+=("$pkg"); done
  [ "${#missing[@]}" -eq 0 ] || as_root apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
stage=$work/stage
mkdir -p "$stage"
cd "$work"

if apt-get "${apt_opts[@]}" source -qq --download-only "haproxy=$DEBIAN_VERSION" >source.log 2>&1; then
  # apt verified each file's SHA256 against the Sources index signed by the Debian archive key.
  route="source package haproxy $DEBIAN_VERSION ($SUITE): $(echo haproxy_*)"
  need gcc libc6-dev liblua5.4-dev libpcre2-dev libssl-dev make
  mkdir src && tar -xzf "haproxy_$VERSION.orig.tar.gz" -C src --strip-components=1
  # The stock image's options, minus USE_QUIC (needs OpenSSL 3.5; the gateway serves no QUIC).
  make -C src -j"$(nproc)" TARGET=linux-glibc USE_GETADDRINFO=1 USE_LUA=1 \
    LUA_INC=/usr/include/lua5.4 USE_OPENSSL=1 USE_PCRE2=1 USE_PCRE2_JIT=1 USE_PROMEX=1 \
    USE_PTHREAD_EMULATION=1 >build.log 2>&1 || { tail -n 30 build.log >&2; exit 1; }
  install -m 0755 src/haproxy "$stage/haproxy"
else
  echo "note: source package haproxy $DEBIAN_VERSION not downloadable here:" \
    "$(grep -m 1 -oE '[0-9]{3} +[A-Za-z ]+' source.log || tail -n 1 source.log)"
  echo "note: using Debian's binary package of the same release instead"
  need patchelf
  apt-get "${apt_opts[@]}" download -qq "haproxy=$DEBIAN_VERSION" libc6 libcrypt1 libgcc-s1 \
    libjemalloc2 liblua5.4-0 libopentracing1 libopentracing-c-wrapper0t64 libpcre2-8-0 \
    libssl3t64 libstdc++6 libzstd1 zlib1g
  route="binary packages, apt-verified: $(echo ./*.deb)"
  for deb in ./*.deb; do dpkg-deb -x "$deb" "$stage/root"; done
  loader=$(cd "$stage" && find root -name 'ld-linux*.so.*' | sed -n 1p)
  mv "$stage/root/usr/sbin/haproxy" "$stage/haproxy"
  patchelf --set-interpreter "$DEST/$loader" --force-rpath \
    --set-rpath "$DEST/$(dirname "$loader")" "$stage/haproxy"
fi

{ echo "$route"; sha256sum ./*.deb ./*.dsc ./*.tar.* 2>/dev/null || true; } >"$stage/PROVENANCE"
rm -rf "$DEST" && mkdir -p "$CACHE" && mv "$stage" "$DEST"
# The unpacked binary must take every library from the cache, none from this machine.
if [ -n "${loader:-}" ] &&
  LD_TRACE_LOADED_OBJECTS=1 "$DEST/haproxy" | grep '=>' | grep -qv "=> $DEST/"; then
  echo "error: libraries resolved outside $DEST" >&2
  exit 1
fi
"$DEST/haproxy" -vv | sed -n 1,10p
is_wanted || { echo "error: $DEST/haproxy is not haproxy $VERSION" >&2; exit 1; }
echo "haproxy $VERSION: installed, cold in ${SECONDS}s"
echo "$DEST/haproxy"
