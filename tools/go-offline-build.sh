#!/usr/bin/env bash
# Builds one of the project's Go tools offline from Debian's Go packages, in GOPATH mode: the one way
# tools/helm-render and tools/yaml-read are built (their build.sh call it with their name and imports).
#
#   tools/go-offline-build.sh NAME SOURCE_DIR OUTPUT GOCODE "IMPORT_PATH DEBIAN_PACKAGE"...
#
# Never touches the network: modules are off, GOPROXY is off, and every import resolves under GOCODE
# (Debian's /usr/share/gocode). Does nothing when OUTPUT is newer than every source and this script.
set -euo pipefail

name="$1"
src="$2"
out="$3"
gocode="$4"
shift 4
case "$out" in /*) ;; *) out="$PWD/$out" ;; esac

die() {
  echo "$name build: $*" >&2
  exit 1
}

packages="golang-go"
for dep in "$@"; do packages="$packages ${dep##* }"; done
command -v go >/dev/null 2>&1 || die "no 'go' on PATH; install the Debian packages: apt-get install -y $packages"

# import path under $gocode/src -> Debian package that ships it
for dep in "$@"; do
  dir="${dep%% *}"
  pkg="${dep##* }"
  [ -d "$gocode/src/$dir" ] ||
    die "missing Go source $gocode/src/$dir; install the Debian package: apt-get install -y $pkg"
done

sources=("$src"/*.go)
if [ -x "$out" ]; then
  stale=""
  # The build scripts too: a changed way of building is a reason to build again.
  for f in "${sources[@]}" "${BASH_SOURCE[0]}" "$src/build.sh"; do
    if [ "$f" -nt "$out" ]; then
      stale="$f"
      break
    fi
  done
  [ -n "$stale" ] || exit 0
fi

tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
# GOPATH mode needs the package under <gopath>/src; the directory name is irrelevant to the binary.
mkdir -p "$tmp/src/$name" "$(dirname "$out")"
cp "${sources[@]}" "$tmp/src/$name/"

# CI runners may have no HOME, which leaves Go without a default build cache.
gocache="${GOCACHE:-}"
if [ -z "$gocache" ]; then
  gocache="$(go env GOCACHE 2>/dev/null || true)"
fi
if [ -z "$gocache" ] || [ "$gocache" = off ] || ! mkdir -p "$gocache" 2>/dev/null; then
  gocache="$tmp/gocache"
fi

(
  cd "$tmp/src/$name"
  env GO111MODULE=off GOFLAGS= GOPROXY=off GOPATH="$tmp:$gocode" GOCACHE="$gocache" CGO_ENABLED=0 \
    go build -trimpath -o "$out.tmp.$$" .
) || die "go build failed (see above)"
# Rename so a concurrent caller never runs a half-written binary.
mv -f "$out.tmp.$$" "$out"
echo "$name build: built $out" >&2
