#!/usr/bin/env bash
# A nightly load test for cron: runs the test, keeps the run id, and acts on the exit code.
# Usage: examples/nightly.sh TEST [extra `runs start` options]
set -uo pipefail
test_name=${1:?usage: nightly.sh TEST [options]}
shift
log_dir=${LOADMGR_HOME:-$HOME/.local/share/loadmgr}/nightly
mkdir -p "$log_dir"
stamp=$(date -u +%Y%m%dT%H%M%SZ)

# Progress lines go to stderr (one line per interval when not on a terminal); the run's JSON
# goes to stdout. --if-busy wait queues behind a run already on the cluster.
loadmgr runs start "$test_name" --if-busy wait --wait-timeout 30m -o json "$@" \
  >"$log_dir/$stamp.json" 2>"$log_dir/$stamp.log"
code=$?

case $code in
  0) echo "$test_name: passed" ;;
  1) echo "$test_name: THRESHOLD FAILED, see $log_dir/$stamp.json" >&2 ;;  # page someone
  5) echo "$test_name: cluster busy, not run" >&2 ;;
  6) echo "$test_name: Locust cluster failed or was lost" >&2 ;;
  *) echo "$test_name: loadmgr failed with exit $code, see $log_dir/$stamp.log" >&2 ;;
esac
exit $code
