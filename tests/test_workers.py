"""``rujuk serve --workers N`` when its supervisor dies outright: the workers stop with it."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from bench.servers import spawned_workers
from tests.support.servers import ROOT, free_port

pytestmark = [pytest.mark.e2e, pytest.mark.skipif(not sys.platform.startswith("linux"), reason="prctl is Linux's")]


def _gone(pid: int) -> bool:
    """The process has exited (a zombie not yet reaped has exited too)."""
    try:
        return b"(zombie)" in Path(f"/proc/{pid}/status").read_bytes()
    except (FileNotFoundError, ProcessLookupError):
        return True


def _listening(port: int) -> bool:
    with socket.socket() as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return True
    return False


def test_workers_stop_when_their_supervisor_is_killed(live_database_url: str, tmp_path: Path) -> None:
    port = free_port()
    log = tmp_path / "serve.log"
    env = {**os.environ, "RUJUK_DATABASE_URL": live_database_url, "RUJUK_ENV": "test"}
    with log.open("ab") as out:
        proc = subprocess.Popen([sys.executable, "-m", "server", "serve", "--host", "127.0.0.1", "--port", str(port),
                                 "--workers", "2"], cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
    workers: list[int] = []
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            assert proc.poll() is None, log.read_text()
            workers = spawned_workers(proc.pid)
            if len(workers) == 2 and log.read_text().count("Application startup complete") == 2:
                break
            time.sleep(0.2)
        assert len(workers) == 2, log.read_text()
        assert httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=5).status_code == 200
        proc.kill()  # as the OOM killer would: no chance to stop its workers
        proc.wait(timeout=10)
        deadline = time.monotonic() + 40
        while time.monotonic() < deadline and not all(_gone(pid) for pid in workers):
            time.sleep(0.2)
        assert all(_gone(pid) for pid in workers), log.read_text()[-3000:]
        assert not _listening(port)
        text = log.read_text()
        assert text.count("Application shutdown complete") == 2  # each shut down gracefully, on SIGTERM
        assert "Traceback" not in text
    finally:
        for pid in workers:
            if not _gone(pid):
                os.kill(pid, signal.SIGKILL)
        if proc.poll() is None:
            proc.kill()
