#!/usr/bin/env bash
# Fill the offline asset cache Solara reads with SOLARA_ASSETS_PROXY_CACHE_DIR (default
# .solara-assets/ at the repo root). Each npm package is unpacked to CACHE/<name@version>/.
# The versions are read from the installed solara's templates, so a Solara upgrade is followed.
# Usage: scripts/prepare_app_assets.sh [CACHE_DIR]
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
CACHE="${1:-${SOLARA_ASSETS_PROXY_CACHE_DIR:-$ROOT/.solara-assets}}"
PY="${PYTHON:-$ROOT/.venv/bin/python}"
[ -x "$PY" ] || PY=python3
SOLARA_DIR="$("$PY" -c 'import pathlib, solara; print(pathlib.Path(solara.__file__).parent)')"

pin() {  # pin <regex> <fallback>: first match in solara's sources, else the fallback
  local found
  found="$(grep -rhoE "$1" "$SOLARA_DIR" 2>/dev/null | sort -u | head -n1 || true)"
  echo "${found:-$2}"
}
PACKAGES=(
  "$(pin '@widgetti/solara-vuetify-app@[0-9][0-9A-Za-z.-]*' '@widgetti/solara-vuetify-app@10.1.1')"
  "$(pin 'requirejs@[0-9][0-9A-Za-z.-]*' 'requirejs@2.3.6')"
  "$(pin 'font-awesome@[0-9][0-9A-Za-z.-]*' 'font-awesome@4.5.0')"
  "@widgetti/$(pin 'vue-grid-layout@[0-9][0-9A-Za-z.-]*' 'vue-grid-layout@2.3.13-alpha.2')"
)

mkdir -p "$CACHE"
TMP="$(mktemp -d)"
trap 'rm -rf "$TMP"' EXIT
for spec in "${PACKAGES[@]}"; do
  spec="${spec%.}"
  dest="$CACHE/$spec"
  if [ -f "$dest/package.json" ]; then
    echo "ok     $spec (cached)"
    continue
  fi
  echo "fetch  $spec"
  tgz="$(cd "$TMP" && npm pack --silent "$spec" | tail -n1)"
  mkdir -p "$dest"
  tar -xzf "$TMP/$tgz" -C "$dest" --strip-components=1
done
echo "asset cache ready: $CACHE"
