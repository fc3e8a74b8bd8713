"""The processes under test: rujuk under uvicorn (1 or more workers) and the PostGraphile baseline."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Self

import httpx

from bench.dataset import plain_url

ROOT = Path(__file__).resolve().parents[1]
NODE_DIR = Path(__file__).resolve().parent / "node"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def rss_kib(pid: int) -> int:
    """Resident set size of one process (``VmRSS`` in ``/proc/<pid>/status``)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError(f"no VmRSS for process {pid}")


def children(pid: int) -> list[int]:
    found: list[int] = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        text = (task / "children").read_text().split()
        found += [int(p) for p in text]
    return found


def sockets_on_port(port: int, pids: list[int]) -> dict[int, int]:
    """How many established TCP connections on local ``port`` each of the processes ``pids`` holds."""
    ours: set[str] = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            if fields[3] == "01" and int(fields[1].rsplit(":", 1)[1], 16) == port:  # 01: ESTABLISHED
                ours.add(f"socket:[{fields[9]}]")  # as /proc/<pid>/fd links name them
    return {pid: _sockets_held(pid, ours) for pid in pids}


def _sockets_held(pid: int, sockets: set[str]) -> int:
    held = 0
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            held += os.readlink(fd) in sockets
        except OSError:  # closed meanwhile
            pass
    return held


def spawned_workers(pid: int) -> list[int]:
    """The worker processes a server started with multiprocessing (not its resource tracker beside them)."""
    return [child for child in children(pid) if b"spawn_main" in Path(f"/proc/{child}/cmdline").read_bytes()]


class Process:
    """A server process on a free loopback port, its output in ``log``, stopped with SIGTERM."""

    name = "server"

    def __init__(self, log_dir: Path) -> None:
        self.port = free_port()
        self.log = log_dir / f"{self.name}-{self.port}.log"
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def command(self) -> tuple[list[str], dict[str, str], Path]:
        raise NotImplementedError

    def ready(self, client: httpx.Client) -> bool:
        raise NotImplementedError

    def start(self, timeout: float = 60) -> Self:
        argv, env, cwd = self.command()
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(argv, cwd=cwd, env=env, stdout=out, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + timeout
        with httpx.Client(timeout=2) as client:
            while time.monotonic() < deadline:
                if self.proc.poll() is not None:
                    raise RuntimeError(f"{self.name} exited:\n{self.output()}")
                try:
                    if self.ready(client):
                        return self
                except httpx.TransportError:
                    pass
                time.sleep(0.2)
        self.stop()
        raise RuntimeError(f"{self.name} did not become ready:\n{self.output()}")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def output(self) -> str:
        return self.log.read_text(errors="replace")[-4000:]

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


#: the per-principal request limits are lifted: the benchmarks measure capacity, not the limiter (whose
#: own per-request cost stays in every figure)
UNLIMITED = {name: "1000000000" for name in ("RUJUK_RATE_LIMIT", "RUJUK_RATE_BURST", "RUJUK_ANONYMOUS_RATE_LIMIT",
                                             "RUJUK_ANONYMOUS_RATE_BURST")}


class Rujuk(Process):
    """``python -m uvicorn server.asgi:app --workers N`` with ``RUJUK_DATABASE_URL`` set (and, for several
    workers, ``RUJUK_BROADCAST_URL`` pointing at the same PostgreSQL so subscriptions span the workers)."""

    name = "rujuk"

    def __init__(self, database_url: str, log_dir: Path, *, workers: int = 1) -> None:
        super().__init__(log_dir)
        self.database_url = database_url
        self.workers = workers

    def command(self) -> tuple[list[str], dict[str, str], Path]:
        env = {**os.environ, **UNLIMITED, "RUJUK_DATABASE_URL": self.database_url, "RUJUK_LOG_LEVEL": "WARNING"}
        env.setdefault("RUJUK_ENV", "test")
        if self.workers > 1:
            env["RUJUK_BROADCAST_URL"] = plain_url(self.database_url)
        argv = [sys.executable, "-m", "uvicorn", "server.asgi:app", "--host", "127.0.0.1", "--port", str(self.port),
                "--workers", str(self.workers), "--ws", "server.websocket:WebSocketProtocol",
                "--ws-per-message-deflate", "false", "--no-access-log", "--log-level", "warning"]
        return argv, env, ROOT

    def start(self, timeout: float = 60) -> Self:
        super().start(timeout)
        # with several workers /readyz answers as soon as one is up: wait until all of them are
        deadline = time.monotonic() + timeout
        while len(self.worker_pids()) < self.workers and time.monotonic() < deadline:
            time.sleep(0.2)
        if self.workers > 1:
            with httpx.Client(timeout=2) as client:
                for _ in range(10 * self.workers):
                    self.ready(client)
        return self

    def ready(self, client: httpx.Client) -> bool:
        return client.get(f"{self.base}/readyz").status_code == 200

    def worker_pids(self) -> list[int]:
        assert self.proc is not None
        return [self.proc.pid] if self.workers == 1 else spawned_workers(self.proc.pid)

    def client_connections(self) -> list[int]:
        """How many established client connections each worker holds on the server's port, most first."""
        return sorted(sockets_on_port(self.port, self.worker_pids()).values(), reverse=True)

    def rss_kib(self) -> int:
        """Resident memory of all the worker processes together."""
        return sum(rss_kib(pid) for pid in self.worker_pids())


def postgraphile_missing() -> str | None:
    """Why the PostGraphile baseline cannot run here, or ``None`` when it can."""
    if shutil.which("node") is None:
        return "node is not installed"
    if not (NODE_DIR / "node_modules" / "postgraphile").is_dir():
        return "npm packages missing (run `npm ci` in bench/node)"
    return None


class PostGraphile(Process):
    """PostGraphile 5 (``bench/node/server.mjs``) over the same database, one Node process."""

    name = "postgraphile"

    def __init__(self, database_url: str, log_dir: Path, *, pool_size: int = 10) -> None:
        super().__init__(log_dir)
        self.database_url = database_url
        self.pool_size = pool_size

    def command(self) -> tuple[list[str], dict[str, str], Path]:
        env = {**os.environ, "DATABASE_URL": plain_url(self.database_url), "PORT": str(self.port),
               "HOST": "127.0.0.1", "POOL_SIZE": str(self.pool_size), "NODE_ENV": "production"}
        return ["node", "--require", "./polyfill.cjs", "server.mjs"], env, NODE_DIR

    def ready(self, client: httpx.Client) -> bool:
        response = client.post(f"{self.base}/graphql", json={"query": "{ __typename }"})
        return response.status_code == 200
