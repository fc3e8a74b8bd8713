"""What a server process does about the process that started it."""

from __future__ import annotations

import ctypes
import logging
import multiprocessing
import os
import signal
import sys

log = logging.getLogger("rujuk")

_PR_SET_PDEATHSIG = 1


def end_with_supervisor() -> bool:
    """In a worker of ``rujuk serve --workers N`` (uvicorn's multiprocess supervisor), have Linux send this
    process SIGTERM when its supervisor dies. Killed outright (the OOM killer, ``kill -9``), a supervisor cannot
    stop its workers, and they would go on serving and holding the port with nobody to stop or replace them; on
    SIGTERM a worker shuts down gracefully. A process started otherwise (one worker, under systemd or a
    container runtime) is left as it is. Whether it was arranged."""
    parent = multiprocessing.parent_process()
    if parent is None or not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        if libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM) != 0:
            return False
    except (OSError, AttributeError):
        return False
    if os.getppid() != parent.pid:  # it died before the request was made
        log.warning("the supervisor of this worker is gone: stopping")
        os.kill(os.getpid(), signal.SIGTERM)
    return True
