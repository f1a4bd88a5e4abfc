#!/usr/bin/env bash
# Builds the documentation site with warnings as errors (mkdocs --strict), for CI.
#   docs/build.sh            build into a temporary folder, removed afterwards
#   docs/build.sh OUT_DIR    build into OUT_DIR and keep it
# Needs the `docs` extra (mkdocs, mkdocstrings[python]) and nnjax importable.
set -euo pipefail
cd "$(dirname "$0")/.."
if [[ $# -ge 1 ]]; then
  out="$1"
else
  out="$(mktemp -d)"
  trap 'rm -rf "$out"' EXIT
fi
mkdocs build --strict --site-dir "$out"
echo "docs built in $out"
