#!/usr/bin/env bash
# Builds helm-render offline from Debian's Go packages, in GOPATH mode.
#
#   tools/helm-render/build.sh [OUTPUT]   (default: tools/helm-render/.bin/helm-render)
#
# Never touches the network: modules are off, GOPROXY is off, and every
# import resolves under /usr/share/gocode (override with HELM_RENDER_GOCODE).
# Does nothing when OUTPUT is newer than every source file.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
out="${1:-$here/.bin/helm-render}"
case "$out" in /*) ;; *) out="$PWD/$out" ;; esac
gocode="${HELM_RENDER_GOCODE:-/usr/share/gocode}"

die() {
  echo "helm-render build: $*" >&2
  exit 1
}

command -v go >/dev/null 2>&1 ||
  die "no 'go' on PATH; install the Debian package: apt-get install -y golang-go"

# import path under $gocode/src -> Debian package that ships it
deps=(
  "github.com/Masterminds/sprig golang-github-masterminds-sprig-dev"
  "github.com/Masterminds/semver golang-github-masterminds-semver-dev"
  "gopkg.in/yaml.v2 golang-gopkg-yaml.v2-dev"
  "gopkg.in/yaml.v3 golang-gopkg-yaml.v3-dev"
)
for dep in "${deps[@]}"; do
  dir="${dep%% *}"
  pkg="${dep##* }"
  [ -d "$gocode/src/$dir" ] ||
    die "missing Go source $gocode/src/$dir; install the Debian package: apt-get install -y $pkg"
done

sources=("$here"/*.go)
if [ -x "$out" ]; then
  stale=""
  # This script too: a changed way of building is a reason to build again.
  for f in "${sources[@]}" "${BASH_SOURCE[0]}"; do
    if [ "$f" -nt "$out" ]; then
      stale="$f"
      break
    fi
  done
  [ -n "$stale" ] || exit 0
fi

tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
# GOPATH mode needs the package under <gopath>/src; the directory name is
# irrelevant to the binary.
mkdir -p "$tmp/src/helmrender" "$(dirname "$out")"
cp "${sources[@]}" "$tmp/src/helmrender/"

# CI runners may have no HOME, which leaves Go without a default build cache.
gocache="${GOCACHE:-}"
if [ -z "$gocache" ]; then
  gocache="$(go env GOCACHE 2>/dev/null || true)"
fi
if [ -z "$gocache" ] || [ "$gocache" = off ] || ! mkdir -p "$gocache" 2>/dev/null; then
  gocache="$tmp/gocache"
fi

(
  cd "$tmp/src/helmrender"
  env GO111MODULE=off GOFLAGS= GOPROXY=off GOPATH="$tmp:$gocode" GOCACHE="$gocache" CGO_ENABLED=0 \
    go build -trimpath -o "$out.tmp.$$" .
) || die "go build failed (see above)"
# Rename so a concurrent caller never runs a half-written binary.
mv -f "$out.tmp.$$" "$out"
echo "helm-render build: built $out" >&2
