"""Run a command and write its peak RSS (bytes) to a file: `python bench/rss.py FILE CMD...`.

A child's `ru_maxrss` counts the memory of the process it was forked from (Linux folds the
pre-exec address space into it), so a big benchmark process would inflate every figure.
Forked from this small launcher instead, the command's own peak is what gets measured.
"""

import os
import signal
import subprocess
import sys


def main(argv):
    out, command = argv[0], argv[1:]
    process = subprocess.Popen(command)
    # Stopped by the benchmark: pass it on, so the command stops too (and records its run).
    signal.signal(signal.SIGTERM, lambda signum, frame: process.send_signal(signum))
    _, status, usage = os.wait4(process.pid, 0)
    with open(out, "w", encoding="utf-8") as handle:
        handle.write(str(usage.ru_maxrss * 1024))  # KiB on Linux
    return os.waitstatus_to_exitcode(status)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
