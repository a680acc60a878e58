#!/usr/bin/env bash
# Creates .venv (Python 3.10+) and installs loadmgr with its test tools. Idempotent: a
# second call only re-installs when pyproject.toml changed.
set -euo pipefail
cd "$(dirname "$0")/.."

python=""
for candidate in "${PYTHON:-}" python3 python3.13 python3.12 python3.11 python3.10 python; do
  [ -n "$candidate" ] || continue
  if command -v "$candidate" >/dev/null 2>&1 &&
     "$candidate" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 10) else 1)' 2>/dev/null; then
    python="$candidate"
    break
  fi
done
if [ -z "$python" ]; then
  echo "error: loadmgr needs Python 3.10 or newer (set PYTHON=/path/to/python3)" >&2
  exit 2
fi

if [ ! -x .venv/bin/python ]; then
  "$python" -m venv .venv
fi
stamp=.venv/.loadmgr-installed
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
  .venv/bin/python -m pip install --quiet --upgrade pip >&2
  # setuptools' notes about editable installs reach pip as BuildBackendWarnings (a kind
  # of UserWarning): a wall of text on every install, about nothing wrong. pip's process
  # ignores UserWarnings; errors, and pip's own warnings and deprecations, show as ever.
  .venv/bin/python -W ignore::UserWarning -m pip install --quiet -e '.[dev]' >&2
  touch "$stamp"
fi
