#!/usr/bin/env bash
# Sets up .venv if needed, checks style and types, and runs every test (unit and
# integration: the tests start their own MongoDB-wire server and Locust clusters).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/bootstrap.sh
.venv/bin/ruff check loadmgr tests examples bench
.venv/bin/mypy
# Integration tests mostly wait on servers, so three workers fit two cores (four starve the
# timing-sensitive ones); work-stealing keeps the last minutes from waiting on one worker,
# and tests/scheduling.py hands the longest tests out first.
# Default verbosity: with -q, pytest-xdist prints its "bringing up nodes..." line twice.
.venv/bin/python -m pytest -p no:cacheprovider -n 3 --dist worksteal "$@"
