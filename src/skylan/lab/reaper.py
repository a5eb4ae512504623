"""Watchdog that removes a lab when the process that built it dies.

``atexit`` does not run when a test run is killed with SIGKILL; this small
process, started in its own session, waits on a pidfd of the owner and cleans
the lab the moment the owner is gone.

Usage: ``python -m skylan.lab.reaper LAB_ID OWNER_PID``
"""

from __future__ import annotations

import os
import select
import signal
import sys

from skylan.lab.cleanup import clean_lab


def wait_for_exit(pid: int) -> None:
    try:
        fd = os.pidfd_open(pid)
    except ProcessLookupError:
        return
    try:
        select.select([fd], [], [])
    finally:
        os.close(fd)


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print("usage: python -m skylan.lab.reaper LAB_ID OWNER_PID", file=sys.stderr)
        return 2
    lab_id, owner = argv[0], int(argv[1])
    # The owner stops us with SIGTERM after a normal close; exit quietly then.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    wait_for_exit(owner)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)  # finish the clean-up once begun
    clean_lab(lab_id)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
