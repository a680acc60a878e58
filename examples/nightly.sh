#!/usr/bin/env bash
# A nightly load test for cron: runs the test, keeps the run and its log, and acts on the
# exit code. Usage: examples/nightly.sh TEST [extra `runs start` options]
#
# cron mails everything a job prints (stdout and stderr): this prints nothing when the test
# passes, and one line on stderr when it does not. The run's JSON and its progress lines
# are kept under $LOADMGR_HOME/nightly/ (default ~/.local/share/loadmgr/nightly/).
set -uo pipefail
test_name=${1:?usage: nightly.sh TEST [options]}
shift
log_dir=${LOADMGR_HOME:-$HOME/.local/share/loadmgr}/nightly
mkdir -p "$log_dir"
stamp=$(date -u +%Y%m%dT%H%M%SZ)

# --if-busy wait queues behind a run already on the cluster (its lease, or Locust itself
# busy with someone else's test), up to --wait-timeout.
loadmgr runs start "$test_name" --if-busy wait --wait-timeout 30m -o json "$@" \
  >"$log_dir/$stamp.json" 2>"$log_dir/$stamp.log"
code=$?

case $code in
  0) ;;  # passed: nothing to say, so cron sends no mail
  1) echo "$test_name: THRESHOLD FAILED, see $log_dir/$stamp.json" >&2 ;;
  2) echo "$test_name: refused (usage or configuration), see $log_dir/$stamp.log" >&2 ;;
  3) echo "$test_name: MongoDB unreachable or refused, see $log_dir/$stamp.log" >&2 ;;
  5) echo "$test_name: cluster busy, not run" >&2 ;;
  6) echo "$test_name: Locust cluster failed or was lost, see $log_dir/$stamp.log" >&2 ;;
  7) echo "$test_name: stopped before its duration by someone else" >&2 ;;
  *) echo "$test_name: loadmgr failed with exit $code, see $log_dir/$stamp.log" >&2 ;;
esac
exit $code
