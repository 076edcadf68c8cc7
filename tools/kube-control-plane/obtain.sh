#!/usr/bin/env bash
# Finds or makes the two binaries of the tests' real control plane (/work/shared/KUBE-APISERVER.md):
# kube-apiserver 1.20.2 and Debian's etcd. Prints one KEY=ABSOLUTE_PATH line per binary on stdout
# (everything else goes to stderr):
#
#   KUBE_APISERVER=/root/.cache/gitops-reverser/kube-apiserver-1.20.2/prebuilt/kube-apiserver
#   ETCD=/usr/bin/etcd
#
# kube-apiserver, first that applies:
#   KUBE_APISERVER_BIN   a ready binary; it must say "Kubernetes v1.20.2" (no sha256 check: a binary built
#                        by the recipe elsewhere is not byte-identical to ours)
#   KUBE_APISERVER_XZ    the prebuilt copy (default ../shared/bin/kube-apiserver-1.20.2-linux-amd64.xz next to
#                        the repository), unpacked once into the cache and refused unless its sha256 is
#                        PREBUILT_SHA256 below
#   otherwise            built from Debian's `kubernetes` source package by the recipe of KUBE-APISERVER.md,
#                        once per machine (about 4 minutes on two cores). KUBE_APISERVER_FROM_SOURCE=1 takes
#                        this path even where the prebuilt copy exists.
# etcd: ETCD_BIN, else `etcd` on PATH / /usr/bin/etcd (Debian's etcd-server, installed here when missing and
# running as root).
#
# Cache: KUBE_CONTROL_PLANE_CACHE, else ${XDG_CACHE_HOME:-$HOME/.cache}/gitops-reverser, else (no usable
# HOME) tools/kube-control-plane/.bin (git-ignored).
set -euo pipefail

VERSION=1.20.2
PREBUILT_SHA256=71be74d236806989fcdbcf470f590b07a09e038c39e3b2c93bafbfb3c892f85c
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"

die() {
  echo "kube-control-plane: $*" >&2
  exit 1
}
say() { echo "kube-control-plane: $*" >&2; }

sha256_of() { sha256sum "$1" | cut -d' ' -f1; }

# Reports the version line; a binary that is not kube-apiserver 1.20.2 is no use to the tests.
check_version() {
  local out
  out="$("$1" --version 2>&1)" || die "$1 --version failed: $out"
  [ "$out" = "Kubernetes v$VERSION" ] || die "$1 says '$out', expected 'Kubernetes v$VERSION'"
}

cache_root() {
  if [ -n "${KUBE_CONTROL_PLANE_CACHE:-}" ]; then
    echo "$KUBE_CONTROL_PLANE_CACHE"
    return
  fi
  if [ -n "${XDG_CACHE_HOME:-}" ] || { [ -n "${HOME:-}" ] && [ "$HOME" != / ]; }; then
    local base="${XDG_CACHE_HOME:-$HOME/.cache}/gitops-reverser"
    if mkdir -p "$base" 2>/dev/null && [ -w "$base" ]; then
      echo "$base"
      return
    fi
  fi
  echo "$here/.bin"
}

# Installs Debian packages when we may (root), else names them. $1: why they are needed.
need_packages() {
  local why="$1"
  shift
  [ "$#" -gt 0 ] || return 0
  [ "$(id -u)" = 0 ] || die "$why needs the Debian packages $*; install them: apt-get install -y $*"
  say "installing $* with apt-get ($why)"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >&2
  apt-get install -y -qq "$@" >&2 || die "apt-get install $* failed ($why)"
}

# ------------------------------------------------------------------------------------------------
# kube-apiserver from the prebuilt copy
# ------------------------------------------------------------------------------------------------

from_prebuilt() {
  local xz="$1" dir="$2/prebuilt" bin tmp got
  bin="$dir/kube-apiserver"
  # Checked on every call, not only after unpacking: a cached file changed since is refused just the same.
  if [ -x "$bin" ] && [ "$(sha256_of "$bin")" = "$PREBUILT_SHA256" ]; then
    echo "$bin"
    return
  fi
  command -v xz >/dev/null 2>&1 || need_packages "unpacking $xz" xz-utils
  mkdir -p "$dir"
  tmp="$bin.tmp.$$"
  xz -dc "$xz" >"$tmp" || {
    rm -f "$tmp"
    die "could not unpack $xz"
  }
  got="$(sha256_of "$tmp")"
  if [ "$got" != "$PREBUILT_SHA256" ]; then
    rm -f "$tmp"
    die "refusing $xz: the unpacked binary's sha256 is $got, expected $PREBUILT_SHA256 (KUBE-APISERVER.md)"
  fi
  chmod 755 "$tmp"
  # Rename so a concurrent caller never runs a half-written binary.
  mv -f "$tmp" "$bin"
  say "unpacked $xz to $bin (sha256 verified)"
  echo "$bin"
}

# ------------------------------------------------------------------------------------------------
# kube-apiserver from Debian's source package (KUBE-APISERVER.md, "Where it comes from")
# ------------------------------------------------------------------------------------------------

REFLECT2_SRC=/usr/share/gocode/src/github.com/modern-go/reflect2
JSONITER_SRC=/usr/share/gocode/src/github.com/json-iterator/go
DEB_SRC_LIST=/etc/apt/sources.list.d/gitops-reverser-deb-src.sources

# `apt-get source` needs a deb-src entry: Debian's own debian.sources, copied with Types: deb-src.
ensure_deb_src() {
  if apt-get source --print-uris kubernetes >/dev/null 2>&1; then return; fi
  [ "$(id -u)" = 0 ] ||
    die "apt-get source kubernetes needs a deb-src entry: as root, copy /etc/apt/sources.list.d/debian.sources with 'Types: deb-src' into a second .sources file and run apt-get update"
  [ -f /etc/apt/sources.list.d/debian.sources ] ||
    die "no /etc/apt/sources.list.d/debian.sources to derive a deb-src entry from; add a deb-src line for bookworm main yourself"
  sed 's/^Types:.*/Types: deb-src/' /etc/apt/sources.list.d/debian.sources >"$DEB_SRC_LIST"
  say "added $DEB_SRC_LIST; apt-get update"
  apt-get update -qq >&2
  apt-get source --print-uris kubernetes >/dev/null 2>&1 || die "apt-get source still finds no 'kubernetes' source package after adding $DEB_SRC_LIST"
}

# Replaces a vendored Go package by the files of Debian's newer package (the old files go: a file kept
# from the old version can redeclare what the new one defines under other build tags).
replace_vendored() {
  local target="$1" src="$2"
  [ -d "$target" ] || die "no $target in the source tree (not the expected kubernetes source?)"
  find "$target" -maxdepth 1 -type f \( -name '*.go' -o -name '*.s' \) -delete
  find "$src" -maxdepth 1 -type f \( -name '*.go' -o -name '*.s' \) ! -name '*_test.go' -exec cp {} "$target/" \;
}

# Go >= 1.19: DeepEqual of two reflect.Values is true for any zero value, so "" would be refused as null.
fix_type_go() {
  local file="$1"
  [ -f "$file" ] || die "no $file in the source tree"
  sed -i 's/data == nil || reflect\.DeepEqual(reflect\.Zero(reflect\.TypeOf(data)), reflect\.ValueOf(data))/data == nil/' "$file"
  ! grep -q 'reflect.DeepEqual(reflect.Zero(reflect.TypeOf(data)), reflect.ValueOf(data))' "$file" ||
    die "could not rewrite the zero-value check in $file"
}

from_source() {
  local dir="$1/debian-source" bin work tree built
  bin="$dir/kube-apiserver"
  if [ -x "$bin" ] && [ -f "$bin.sha256" ] && [ "$(sha256_of "$bin")" = "$(cat "$bin.sha256")" ]; then
    echo "$bin"
    return
  fi
  say "building kube-apiserver $VERSION from Debian's kubernetes source package (once per machine, ~4 minutes on two cores)"
  local missing=()
  command -v go >/dev/null 2>&1 || missing+=(golang-go)
  command -v make >/dev/null 2>&1 || missing+=(make)
  command -v rsync >/dev/null 2>&1 || missing+=(rsync)
  command -v dpkg-source >/dev/null 2>&1 || missing+=(dpkg-dev)
  [ -d "$REFLECT2_SRC" ] || missing+=(golang-github-modern-go-reflect2-dev)
  [ -d "$JSONITER_SRC" ] || missing+=(golang-github-json-iterator-go-dev)
  need_packages "building kube-apiserver from source" "${missing[@]}"
  ensure_deb_src

  mkdir -p "$dir"
  work="$(mktemp -d "$dir/build.XXXXXX")"
  # The tree and its _output are ~2 GB; only the binary is kept.
  trap 'rm -rf "$work"' EXIT
  (cd "$work" && apt-get source -qq kubernetes >&2) || die "apt-get source kubernetes failed"
  tree="$(find "$work" -mindepth 1 -maxdepth 1 -type d -name "kubernetes-*really$VERSION" | head -n1)"
  [ -n "$tree" ] || die "apt-get source unpacked no kubernetes-*really$VERSION tree in $work (Debian's package moved on?): $(ls "$work")"

  # The three vendor fixes of KUBE-APISERVER.md.
  replace_vendored "$tree/vendor/github.com/modern-go/reflect2" "$REFLECT2_SRC"
  replace_vendored "$tree/vendor/github.com/json-iterator/go" "$JSONITER_SRC"
  fix_type_go "$tree/vendor/k8s.io/kube-openapi/pkg/validation/validate/type.go"
  fix_type_go "$tree/vendor/github.com/go-openapi/validate/type.go"

  # The build scripts expect the tree at $GOPATH/src/k8s.io/kubernetes.
  mkdir -p "$tree/.go/src/k8s.io"
  ln -s "$tree" "$tree/.go/src/k8s.io/kubernetes"
  (cd "$tree" && GOPATH="$tree/.go" CGO_ENABLED=0 GOFLAGS=-mod=vendor make WHAT=cmd/kube-apiserver >&2) ||
    die "make WHAT=cmd/kube-apiserver failed (see above)"
  built="$tree/_output/bin/kube-apiserver"
  [ -x "$built" ] || built="$tree/_output/local/bin/linux/amd64/kube-apiserver"
  [ -x "$built" ] || die "make finished but left no kube-apiserver under $tree/_output"
  cp "$built" "$bin.tmp.$$"
  check_version "$bin.tmp.$$"
  # Its own sha256 is the check of the cached copy from now on.
  sha256_of "$bin.tmp.$$" >"$bin.sha256"
  mv -f "$bin.tmp.$$" "$bin"
  rm -rf "$work"
  trap - EXIT
  say "built $bin"
  echo "$bin"
}

obtain_kube_apiserver() {
  if [ -n "${KUBE_APISERVER_BIN:-}" ]; then
    [ -x "$KUBE_APISERVER_BIN" ] || die "KUBE_APISERVER_BIN=$KUBE_APISERVER_BIN is not an executable file"
    check_version "$KUBE_APISERVER_BIN"
    echo "$(cd "$(dirname "$KUBE_APISERVER_BIN")" && pwd)/$(basename "$KUBE_APISERVER_BIN")"
    return
  fi
  local root dir xz
  root="$(cache_root)"
  dir="$root/kube-apiserver-$VERSION"
  mkdir -p "$dir" || die "cannot create the cache directory $dir (set KUBE_CONTROL_PLANE_CACHE)"
  dir="$(cd "$dir" && pwd)"
  # One unpack or build at a time per cache: test runs started together wait for the first.
  if command -v flock >/dev/null 2>&1; then
    exec 9>"$dir/.lock"
    flock 9
  fi
  xz="${KUBE_APISERVER_XZ:-$(dirname "$repo")/shared/bin/kube-apiserver-$VERSION-linux-amd64.xz}"
  if [ "${KUBE_APISERVER_FROM_SOURCE:-}" != 1 ]; then
    if [ -f "$xz" ]; then
      from_prebuilt "$xz" "$dir"
      return
    fi
    [ -z "${KUBE_APISERVER_XZ:-}" ] || die "KUBE_APISERVER_XZ=$KUBE_APISERVER_XZ does not exist"
    say "no prebuilt copy at $xz"
  fi
  from_source "$dir"
}

obtain_etcd() {
  if [ -n "${ETCD_BIN:-}" ]; then
    [ -x "$ETCD_BIN" ] || die "ETCD_BIN=$ETCD_BIN is not an executable file"
    echo "$ETCD_BIN"
    return
  fi
  local etcd
  etcd="$(command -v etcd 2>/dev/null || true)"
  [ -n "$etcd" ] || [ ! -x /usr/bin/etcd ] || etcd=/usr/bin/etcd
  if [ -z "$etcd" ]; then
    need_packages "the tests' control plane (etcd)" etcd-server
    etcd=/usr/bin/etcd
    [ -x "$etcd" ] || die "etcd-server is installed but there is no /usr/bin/etcd"
  fi
  echo "$etcd"
}

apiserver="$(obtain_kube_apiserver)"
etcd="$(obtain_etcd)"
echo "KUBE_APISERVER=$apiserver"
echo "ETCD=$etcd"
