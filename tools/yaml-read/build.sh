#!/usr/bin/env bash
# Builds yaml-read offline from Debian's Go packages, in GOPATH mode (tools/go-offline-build.sh).
#
#   tools/yaml-read/build.sh [OUTPUT]   (default: tools/yaml-read/.bin/yaml-read)
#
# Imports resolve under /usr/share/gocode (override with YAML_READ_GOCODE). Does nothing when OUTPUT is
# newer than every source file.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
exec bash "$here/../go-offline-build.sh" yaml-read "$here" "${1:-$here/.bin/yaml-read}" "${YAML_READ_GOCODE:-/usr/share/gocode}" \
  "gopkg.in/yaml.v2 golang-gopkg-yaml.v2-dev" \
  "gopkg.in/yaml.v3 golang-gopkg-yaml.v3-dev"
