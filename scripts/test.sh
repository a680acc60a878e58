#!/usr/bin/env bash
# Sets up .venv if needed, checks style and types, and runs every test (unit and
# integration: the tests start their own MongoDB-wire server and Locust clusters).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/bootstrap.sh
.venv/bin/ruff check loadmgr tests examples bench
.venv/bin/mypy
# Integration tests mostly wait on servers (real Locust runs take their seconds), so four
# workers fit two cores; work-stealing keeps the last minutes from waiting on one worker.
# Default verbosity: with -q, pytest-xdist prints its "bringing up nodes..." line twice.
.venv/bin/python -m pytest -p no:cacheprovider -n 4 --dist worksteal "$@"
