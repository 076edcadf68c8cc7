#!/usr/bin/env bash
# What `npm start` and `npm test` need beyond the npm packages, on a Debian or Ubuntu machine: checked every
# time (quickly), installed with apt-get when something is missing and this runs as root; otherwise the
# exact apt-get line is printed and the command stops. npm runs it before `start` and `test` (prestart,
# pretest), so the README's two commands work on a fresh machine with only Node.js and git.
#
#   tools/prerequisites.sh start   a Valkey server (valkey-server, else redis-server; none with VALKEY_URL) and git
#   tools/prerequisites.sh test    the same, and: Go with its yaml packages (tools/yaml-read) and, without
#                                  helm, sprig (tools/helm-render); Chromium (browser tests); etcd, xz and
#                                  kube-apiserver 1.20.2 (tools/kube-control-plane/obtain.sh: the real
#                                  API server); openssh-server (Git over SSH); a git identity for test commits
#
# GITOPS_REVERSER_NO_INSTALL=1 only checks and reports.
set -euo pipefail

what="${1:-}"
case "$what" in start | test) ;; *)
  echo "usage: tools/prerequisites.sh start|test" >&2
  exit 2
  ;;
esac
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
say() { echo "prerequisites: $*" >&2; }

missing=()
# A Valkey/Redis server binary: `npm start` embeds one (unless VALKEY_URL names a server), tests spawn their own.
if [ "$what" = test ] || [ -z "${VALKEY_URL:-}" ]; then
  if ! command -v valkey-server >/dev/null 2>&1 && ! command -v redis-server >/dev/null 2>&1; then
    # Debian 12 has redis-server; Debian 13 and Ubuntu 24.04 have valkey-server too.
    if apt-cache show valkey-server >/dev/null 2>&1; then missing+=(valkey-server); else missing+=(redis-server); fi
  fi
fi
command -v git >/dev/null 2>&1 || missing+=(git)

if [ "$what" = test ]; then
  command -v go >/dev/null 2>&1 || missing+=(golang-go)
  go_deps=(gopkg.in/yaml.v2:golang-gopkg-yaml.v2-dev gopkg.in/yaml.v3:golang-gopkg-yaml.v3-dev)
  command -v helm >/dev/null 2>&1 || go_deps+=(github.com/Masterminds/sprig:golang-github-masterminds-sprig-dev)
  for dep in "${go_deps[@]}"; do
    [ -d "/usr/share/gocode/src/${dep%%:*}" ] || missing+=("${dep##*:}")
  done
  [ -x "${CHROMIUM_PATH:-/usr/bin/chromium}" ] || missing+=(chromium)
  command -v etcd >/dev/null 2>&1 || missing+=(etcd-server)
  command -v xz >/dev/null 2>&1 || missing+=(xz-utils)
  [ -x /usr/sbin/sshd ] || missing+=(openssh-server)
  command -v age >/dev/null 2>&1 || missing+=(age)
fi

if [ "${#missing[@]}" -gt 0 ]; then
  line="apt-get update && apt-get install -y ${missing[*]}"
  if [ "${GITOPS_REVERSER_NO_INSTALL:-}" = 1 ] || [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then
    say "missing: ${missing[*]}. Install them (as root, on Debian or Ubuntu): $line"
    exit 1
  fi
  say "installing ${missing[*]} with apt-get (once)"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq "${missing[@]}" >/dev/null || {
    say "could not install ${missing[*]}: $line"
    exit 1
  }
fi

if [ "$what" = test ]; then
  # kube-apiserver 1.20.2: the prebuilt copy (sha256-checked) or, where there is none, built once from
  # Debian's kubernetes source package (minutes), here rather than inside the tests' time limits.
  "$here/kube-control-plane/obtain.sh" >/dev/null
  # Commits made by tests need an identity, even on a machine with no git configuration.
  git config --global user.email >/dev/null 2>&1 || git config --global user.email "tests@gitops-reverser.local"
  git config --global user.name >/dev/null 2>&1 || git config --global user.name "GitOps Reverser tests"
fi
