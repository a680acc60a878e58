#!/usr/bin/env bash
# The main job on a fresh machine: a real load test on the built-in `local` Locust cluster,
# against the small demo target, recorded in the embedded store, with its metrics shown.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/bootstrap.sh
export PATH="$PWD/.venv/bin:$PATH"

port=$(python -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
python examples/demo_target.py --port "$port" >/dev/null 2>&1 &
target=$!
trap 'kill $target 2>/dev/null || true' EXIT
for _ in $(seq 100); do
  python -c "import socket; socket.create_connection(('127.0.0.1', $port), 0.2)" 2>/dev/null && break
  sleep 0.1
done

# A test is defined once (or refreshed, if the demo ran before) ...
if loadmgr tests show demo -q >/dev/null 2>&1; then
  loadmgr tests update demo --target-url "http://127.0.0.1:$port" \
    --locustfile examples/locustfile.py -q >/dev/null
else
  loadmgr tests create --name demo --target-url "http://127.0.0.1:$port" \
    --locustfile examples/locustfile.py --users 20 --spawn-rate 10 --duration 30s \
    --threshold 'p95<500ms' --threshold 'error_rate<1%' --tag demo -q >/dev/null
fi
# ... and run as often as you like: live progress, then the recorded run.
status=0
run=$(loadmgr runs start demo --interval 3 -q) || status=$?
echo
loadmgr runs show "$run"
loadmgr metrics show "$run" --view requests 2>/dev/null || true
echo
echo "Recorded. Try: .venv/bin/loadmgr runs list    .venv/bin/loadmgr runs show $run -o json"
exit $status
