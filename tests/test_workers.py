"""``rujuk serve --workers N`` as an operator runs it: every worker accepts on a listening socket of its own, so a
burst of new connections is spread over the workers; a worker that dies is replaced; SIGTERM stops them all; a
port that is taken, or an app that cannot start, ends the server at once with a clear message."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from bench.servers import LISTEN, port_sockets, sockets_on_port, spawned_workers
from server.workers import reuse_port_supported
from tests.support.servers import ROOT, free_port

pytestmark = [pytest.mark.e2e,
              pytest.mark.skipif(not reuse_port_supported(), reason="SO_REUSEPORT is Linux's")]


class Served:
    def __init__(self, proc: subprocess.Popen[bytes], port: int, log: Path) -> None:
        self.proc, self.port, self.log = proc, port, log

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def workers(self) -> list[int]:
        return spawned_workers(self.proc.pid)

    def listening(self) -> dict[int, int]:
        return sockets_on_port(self.port, self.workers(), LISTEN)

    def output(self) -> str:
        return self.log.read_text(errors="replace")


def _serve(database_url: str, log: Path, *extra: str, workers: int = 2) -> tuple[subprocess.Popen[bytes], int]:
    port = free_port()
    env = {**os.environ, "RUJUK_DATABASE_URL": database_url, "RUJUK_ENV": "test"}
    with log.open("ab") as out:
        proc = subprocess.Popen([sys.executable, "-m", "server", "serve", "--host", "127.0.0.1", "--port", str(port),
                                 "--workers", str(workers), *extra], cwd=ROOT, env=env, stdout=out,
                                stderr=subprocess.STDOUT)
    return proc, port


def _until(what: str, check: object, served: Served, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if served.proc.poll() is not None:
            raise AssertionError(f"the server exited while waiting for {what}:\n{served.output()[-3000:]}")
        try:
            if check():  # type: ignore[operator]
                return
        except (httpx.TransportError, FileNotFoundError, ProcessLookupError):
            pass
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}:\n{served.output()[-3000:]}")


def _all_listening(served: Served, workers: int = 2) -> bool:
    """``workers`` sockets listen on the port, one in each worker (uvicorn's own --workers: one, in all)."""
    listening = served.listening()
    return (len(port_sockets(served.port, LISTEN)) == workers and len(listening) == workers
            and all(n == 1 for n in listening.values()))


@pytest.fixture
def served(live_database_url: str, tmp_path: Path) -> Iterator[Served]:
    proc, port = _serve(live_database_url, tmp_path / "serve.log")
    s = Served(proc, port, tmp_path / "serve.log")
    try:
        _until("both workers listening", lambda: _all_listening(s), s)
        _until("readiness", lambda: httpx.get(f"{s.base}/readyz", timeout=2).status_code == 200, s)
        yield s
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=40)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
    assert "Traceback" not in s.output()


def test_each_worker_listens_on_a_socket_of_its_own_and_a_burst_of_connections_is_spread(served: Served) -> None:
    workers = served.workers()
    assert len(workers) == 2
    # two listening sockets on the one port, one in each worker (uvicorn's --workers: one, shared by both)
    assert len(port_sockets(served.port, LISTEN)) == 2
    assert served.listening() == {pid: 1 for pid in workers}

    async def burst() -> dict[int, int]:
        opened = [httpx.AsyncClient(base_url=served.base, timeout=10) for _ in range(32)]
        try:
            answers = await asyncio.gather(*(c.post("/graphql", json={"query": "{ __typename }"}) for c in opened))
            assert [a.json() for a in answers] == [{"data": {"__typename": "Query"}}] * 32
            return sockets_on_port(served.port, workers)  # while the 32 connections are still open
        finally:
            await asyncio.gather(*(c.aclose() for c in opened))

    held = asyncio.run(burst())
    assert sum(held.values()) >= 32, held
    # the kernel hashes each connection to a socket: both workers hold some (all 32 on one: p = 2**-31)
    assert all(n > 0 for n in held.values()), held


def test_a_worker_that_dies_is_replaced_and_the_port_keeps_answering(served: Served) -> None:
    first, second = served.workers()
    os.kill(first, signal.SIGKILL)
    _until("a new worker in place of the killed one",
           lambda: first not in served.workers() and len(served.workers()) == 2 and _all_listening(served), served)
    assert second in served.workers()
    assert "starting another" in served.output()
    for _ in range(20):  # every connection is answered, whichever socket it is hashed to
        with httpx.Client(base_url=served.base, timeout=10) as client:
            assert client.get("/readyz").status_code == 200


def test_sigterm_stops_every_worker_and_frees_the_port(served: Served) -> None:
    workers = served.workers()
    served.proc.send_signal(signal.SIGTERM)
    assert served.proc.wait(timeout=40) == 0
    for pid in workers:
        assert not Path(f"/proc/{pid}").exists() or b"zombie" in Path(f"/proc/{pid}/status").read_bytes().lower()
    with socket.socket() as s:  # nothing listens on the port any more
        s.bind(("127.0.0.1", served.port))
    assert served.output().count("Application shutdown complete") == 2


def test_a_taken_port_ends_the_server_at_once_with_a_clear_message(live_database_url: str, tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        env = {**os.environ, "RUJUK_DATABASE_URL": live_database_url, "RUJUK_ENV": "test"}
        done = subprocess.run([sys.executable, "-m", "server", "serve", "--host", "127.0.0.1", "--port", str(port),
                               "--workers", "2"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 3
    assert f"cannot listen on 127.0.0.1:{port}: Address already in use" in done.stderr
    assert "Traceback" not in done.stdout + done.stderr


def test_workers_that_cannot_start_end_the_server_without_restarting_them(tmp_path: Path) -> None:
    code = ("import logging, sys; logging.basicConfig(level=logging.INFO); from server.workers import Supervisor; "
            "sys.exit(Supervisor('server.nowhere:app', host='127.0.0.1', port=0, workers=2, options={}).run())")
    started = time.monotonic()
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert done.returncode == 3, done.stderr[-3000:]
    assert "could not start" in done.stderr
    assert "starting another" not in done.stderr
    assert time.monotonic() - started < 30
