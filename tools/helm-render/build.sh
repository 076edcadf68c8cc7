#!/usr/bin/env bash
# Builds helm-render offline from Debian's Go packages, in GOPATH mode (tools/go-offline-build.sh).
#
#   tools/helm-render/build.sh [OUTPUT]   (default: tools/helm-render/.bin/helm-render)
#
# Imports resolve under /usr/share/gocode (override with HELM_RENDER_GOCODE). Does nothing when OUTPUT is
# newer than every source file.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
exec bash "$here/../go-offline-build.sh" helm-render "$here" "${1:-$here/.bin/helm-render}" "${HELM_RENDER_GOCODE:-/usr/share/gocode}" \
  "github.com/Masterminds/sprig golang-github-masterminds-sprig-dev" \
  "github.com/Masterminds/semver golang-github-masterminds-semver-dev" \
  "gopkg.in/yaml.v2 golang-gopkg-yaml.v2-dev" \
  "gopkg.in/yaml.v3 golang-gopkg-yaml.v3-dev"
