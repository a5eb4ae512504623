"""Watchdog that removes a lab when the process that built it dies.

``atexit`` does not run when a test run is killed with SIGKILL; this small
process, started in its own session, waits on a pidfd of the owner and cleans
the lab the moment the owner is gone.

Usage: ``python -m skylan.lab.reaper LAB_ID OWNER_PID`` for a lab, or
``python -m skylan.lab.reaper postgres ROOT_DIR OWNER_PID`` for a test
PostgreSQL cluster (:mod:`skylan.lab.postgres`).
"""

from __future__ import annotations

import os
import select
import signal
import sys
from pathlib import Path

from skylan.lab.cleanup import clean_lab
from skylan.lab.postgres import stop_cluster


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
    if len(argv) == 3 and argv[0] == "postgres":
        root, owner = Path(argv[1]), int(argv[2])

        def clean() -> None:
            stop_cluster(root)
    elif len(argv) == 2:
        lab_id, owner = argv[0], int(argv[1])

        def clean() -> None:
            clean_lab(lab_id)
    else:
        print(
            "usage: python -m skylan.lab.reaper LAB_ID OWNER_PID\n"
            "       python -m skylan.lab.reaper postgres ROOT_DIR OWNER_PID",
            file=sys.stderr,
        )
        return 2
    # The owner stops us with SIGTERM after a normal close; exit quietly then.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    wait_for_exit(owner)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)  # finish the clean-up once begun
    clean()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
