"""Several server processes on one port, each accepting on a listening socket of its own.

uvicorn's ``--workers`` binds one socket in the parent and hands it to every worker: whichever worker wakes first
accepts, so a burst of new connections (a proxy opening its keep-alive pool, a load test, consoles reconnecting
after a restart) lands almost all on one worker while the others idle. Here every worker binds the port itself
with ``SO_REUSEPORT`` and the kernel spreads new connections over the workers' sockets by a hash of the client's
address and port.

The parent supervises: SIGINT or SIGTERM is passed on to the workers, which shut down gracefully (each closes its
WebSockets with 1012 and finishes requests in flight); a worker that dies is started again; a worker that fails
before it serves (the app cannot start, or the port cannot be bound) stops them all, since every new one would fail
the same way.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import signal
import socket
import sys
import threading
import time
from dataclasses import dataclass, field
from multiprocessing.process import BaseProcess
from typing import Any

import uvicorn
from uvicorn.config import STARTUP_FAILURE

log = logging.getLogger("rujuk.workers")

_spawn = multiprocessing.get_context("spawn")

#: a worker that dies this soon after its start, this many times in a row, stops the supervisor
_CRASH_WINDOW_S = 5.0
_CRASH_LIMIT = 5


def reuse_port_supported() -> bool:
    return hasattr(socket, "SO_REUSEPORT") and sys.platform.startswith("linux")


def _family(host: str) -> socket.AddressFamily:
    return socket.AF_INET6 if ":" in host else socket.AF_INET


def listening_socket(host: str, port: int) -> socket.socket:
    """A TCP socket bound to ``host:port`` in the port's ``SO_REUSEPORT`` group (asyncio's server listens on it)."""
    sock = socket.socket(_family(host), socket.SOCK_STREAM, socket.IPPROTO_TCP)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.bind((host, port))
    except BaseException:
        sock.close()
        raise
    return sock


def claim_port(host: str, port: int) -> int:
    """The port the workers will share, checked free: bound once without ``SO_REUSEPORT``, so a port another
    server listens on (even another rujuk, which would otherwise silently share it) fails here, at once and
    clearly. Port 0 picks a free port, the same for every worker."""
    with socket.socket(_family(host), socket.SOCK_STREAM, socket.IPPROTO_TCP) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        probe.bind((host, port))
        return int(probe.getsockname()[1])


def _worker(app: str, host: str, port: int, options: dict[str, Any]) -> None:
    """One worker process: bind its own socket, serve until told to stop."""
    config = uvicorn.Config(app, host=host, port=port, **options)  # also sets up this process's logging
    try:
        sock = listening_socket(host, port)
    except OSError as exc:
        log.error("a worker cannot listen on %s:%d: %s", host, port, exc)
        sys.exit(STARTUP_FAILURE)
    server = uvicorn.Server(config)
    try:
        server.run(sockets=[sock])
    except SystemExit:  # uvicorn exits so when the app cannot be imported
        if not server.started:
            sys.exit(STARTUP_FAILURE)
        raise
    if not server.started:  # the app's startup failed
        sys.exit(STARTUP_FAILURE)


@dataclass
class _Slot:
    process: BaseProcess
    started_at: float = field(default_factory=time.monotonic)
    quick_deaths: int = 0


class Supervisor:
    """Runs ``workers`` processes of ``app`` on ``host:port`` (each with its own ``SO_REUSEPORT`` socket) until
    SIGINT or SIGTERM, restarting any that dies. ``options`` are further ``uvicorn.Config`` arguments."""

    def __init__(self, app: str, *, host: str, port: int, workers: int, options: dict[str, Any],
                 stop_timeout: float = 30.0) -> None:
        if workers < 1:
            raise ValueError("workers must be at least 1")
        self.app, self.host, self.port, self.workers = app, host, port, workers
        self.options = options
        self.stop_timeout = stop_timeout
        self.slots: list[_Slot] = []
        self._stop = threading.Event()
        self._failed = False

    def _start(self, quick_deaths: int = 0) -> _Slot:
        process = _spawn.Process(target=_worker, args=(self.app, self.host, self.port, self.options),
                                 name="rujuk-worker")
        process.start()
        return _Slot(process, quick_deaths=quick_deaths)

    def _on_signal(self, signum: int, _frame: object) -> None:
        if not self._stop.is_set():
            log.info("%s received: stopping the workers", signal.Signals(signum).name)
        self._stop.set()

    def pids(self) -> list[int]:
        return [slot.process.pid for slot in self.slots if slot.process.pid is not None]

    def run(self) -> int:
        """Serve; the exit code: 0 after a stop by signal, ``STARTUP_FAILURE`` when workers could not start."""
        try:
            self.port = claim_port(self.host, self.port)
        except OSError as exc:
            log.error("cannot listen on %s:%d: %s", self.host, self.port, exc.strerror or exc)
            return STARTUP_FAILURE
        previous = {sig: signal.signal(sig, self._on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
        try:
            self.slots = [self._start() for _ in range(self.workers)]
            log.info("%d workers on %s:%d, each with its own socket", self.workers, self.host, self.port)
            while not self._stop.wait(0.25):
                self._keep_alive()
        finally:
            self._stop_all()
            for sig, handler in previous.items():
                signal.signal(sig, handler)
        return STARTUP_FAILURE if self._failed else 0

    def _keep_alive(self) -> None:
        for i, slot in enumerate(self.slots):
            code = slot.process.exitcode
            if code is None:
                continue
            slot.process.join()
            quick = time.monotonic() - slot.started_at < _CRASH_WINDOW_S
            deaths = slot.quick_deaths + 1 if quick else 0
            if code == STARTUP_FAILURE or deaths >= _CRASH_LIMIT:
                log.error("worker %s could not start (exit code %s): stopping", slot.process.pid, code)
                self._failed = True
                self._stop.set()
                return
            log.warning("worker %s ended (exit code %s): starting another", slot.process.pid, code)
            self.slots[i] = self._start(deaths)

    def _stop_all(self) -> None:
        for slot in self.slots:
            if slot.process.exitcode is None and slot.process.pid is not None:
                try:
                    os.kill(slot.process.pid, signal.SIGTERM)
                except ProcessLookupError:
                    pass
        deadline = time.monotonic() + self.stop_timeout
        for slot in self.slots:
            slot.process.join(max(0.0, deadline - time.monotonic()))
            if slot.process.exitcode is None:
                log.warning("worker %s did not stop in %.0f s: killed", slot.process.pid, self.stop_timeout)
                slot.process.kill()
                slot.process.join()
