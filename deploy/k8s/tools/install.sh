#!/usr/bin/env bash
# Tools for the offline manifest checks (tests/unit/test_k8s_manifests.py), in .venv/tools:
# checkov and kubernetes-validate (setup.cfg's [k8s-tools] extra, pinned there; checkov's own
# pins clash with the project's, hence a venv of their own) and the Gateway API schemas (npm).
set -euo pipefail
cd "$(dirname "$0")/../../.."
PYTHON="${PYTHON:-python3.11}"
command -v "$PYTHON" >/dev/null 2>&1 || PYTHON=python3
# Inside .venv: every tree walk that skips .venv (ruff, doc checks) skips these too.
TOOLS=.venv/tools
[ -x "$TOOLS/bin/python" ] || "$PYTHON" -m venv "$TOOLS"
stamp="$TOOLS/.installed"
mapfile -t pins < <("$PYTHON" - <<'PY'
import configparser
config = configparser.ConfigParser()
config.read("setup.cfg")
for line in config["options.extras_require"]["k8s-tools"].splitlines():
    if line.strip() and not line.strip().startswith("#"):
        print(line.strip())
PY
)
# Reinstall only when the pins or the npm lock change, not on every setup.cfg edit.
wanted="$(printf '%s\n' "${pins[@]}"; sha256sum deploy/k8s/tools/package-lock.json)"
if [ "$(cat "$stamp" 2>/dev/null)" != "$wanted" ]; then
  echo "[bootstrap] installing the manifest check tools into $TOOLS"
  "$TOOLS/bin/pip" install -q --disable-pip-version-check "${pins[@]}"
  command -v npm >/dev/null || { echo "npm is required for the Gateway API schemas" >&2; exit 1; }
  mkdir -p "$TOOLS/npm"
  cp deploy/k8s/tools/package.json deploy/k8s/tools/package-lock.json "$TOOLS/npm/"
  npm ci --silent --no-audit --no-fund --prefix "$TOOLS/npm" >/dev/null
  printf '%s' "$wanted" > "$stamp"
fi
