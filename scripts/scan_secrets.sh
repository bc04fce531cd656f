#!/usr/bin/env bash
# Secrets scan for CI: detect-secrets (pinned in setup.cfg's `test` extra) over every file git
# tracks or would track (untracked files that .gitignore does not hide are scanned too).
# Exits 0 when nothing is found, 1 (listing file:line:type) when something is, 2 on misuse.
# Usage: scripts/scan_secrets.sh [DIR]      DIR: a git work tree (default: this repository)
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
target="${1:-$here}"
detect_secrets="${DETECT_SECRETS:-$here/.venv/bin/detect-secrets}"
python="${PYTHON:-$here/.venv/bin/python}"

if [[ ! -x "$detect_secrets" ]]; then
    echo "scan_secrets: $detect_secrets not found; install the test extra: pip install -e '.[test]'" >&2
    exit 2
fi
cd "$target"
git rev-parse --is-inside-work-tree >/dev/null 2>&1 || { echo "scan_secrets: $target is not a git work tree" >&2; exit 2; }

# Files that exist (a file deleted but not yet staged is still listed by git).
files=()
while IFS= read -r -d '' file; do
    [[ -f "$file" ]] && files+=("$file")
done < <(git ls-files -z --cached --others --exclude-standard)
if [[ ${#files[@]} -eq 0 ]]; then
    echo "scan_secrets: no files to scan in $target"
    exit 0
fi

# The one allowlisted value is RabbitMQ's built-in guest/guest account (documented local
# default, refused by RabbitMQ from anything but loopback). Everything else is a finding.
report="$("$detect_secrets" scan --exclude-secrets '^guest$' "${files[@]}")"

"$python" -c '
import json, sys
results = json.load(sys.stdin)["results"]
findings = [(name, item["line_number"], item["type"])
            for name, items in sorted(results.items()) for item in items]
for name, line, kind in findings:
    print(f"{name}:{line}: {kind}")
print(f"scan_secrets: {len(findings)} potential secret(s) in {sys.argv[1]} files")
sys.exit(1 if findings else 0)
' "${#files[@]}" <<< "$report"
