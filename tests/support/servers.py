"""Real uvicorn server processes and a graphql-transport-ws client for end-to-end tests."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
from websockets.asyncio.client import ClientConnection, connect

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def stop(proc: subprocess.Popen[bytes]) -> None:
    """SIGTERM, as a supervisor stops a server; killed if it has not exited within 15 s."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


class ServerProcess:
    """``python -m uvicorn server.asgi:app`` with the given environment, on a free port."""

    def __init__(self, database_url: str, log_dir: Path, **env: str) -> None:
        self.port = free_port()
        self.log = log_dir / f"server-{self.port}.log"
        self.env = {**os.environ, "RUJUK_DATABASE_URL": database_url, "RUJUK_ENV": "test",
                    "RUJUK_RATE_LIMIT": "10000", "RUJUK_RATE_BURST": "10000", "RUJUK_ANONYMOUS_RATE_LIMIT": "10000",
                    "RUJUK_ANONYMOUS_RATE_BURST": "10000", **env}
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def http(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ws(self) -> str:
        return f"ws://127.0.0.1:{self.port}/graphql"

    def start(self) -> ServerProcess:
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "uvicorn", "server.asgi:app", "--host", "127.0.0.1", "--port", str(self.port),
                 "--ws", "server.websocket:WebSocketProtocol", "--no-access-log"],
                cwd=ROOT, env=self.env, stdout=out, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited:\n{self.log.read_text()}")
            try:
                if httpx.get(f"{self.http}/readyz", timeout=1).status_code == 200:
                    return self
            except httpx.TransportError:
                pass
            time.sleep(0.1)
        raise RuntimeError(f"server did not become ready:\n{self.log.read_text()}")

    def stop(self) -> None:
        if self.proc is not None:
            stop(self.proc)

    def rss_kib(self) -> int:
        assert self.proc is not None
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
        raise RuntimeError("no VmRSS")

    def output(self) -> str:
        return self.log.read_text(errors="replace")


async def graphql(base: str, query: str, variables: dict[str, Any] | None = None,
                  token: str | None = None) -> dict[str, Any]:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    async with httpx.AsyncClient(timeout=30) as http:
        response = await http.post(f"{base}/graphql", json={"query": query, "variables": variables or {}},
                                   headers=headers)
    body: dict[str, Any] = response.json()
    return body


async def login(base: str, username: str, password: str) -> str:
    body = await graphql(base, "mutation($u: String!, $p: String!) { login(username: $u, password: $p) "
                               "{ accessToken errors { code } } }", {"u": username, "p": password})
    token: str = body["data"]["login"]["accessToken"]
    assert token, body
    return token


class GraphQLWS:
    """A minimal graphql-transport-ws client."""

    def __init__(self, conn: ClientConnection) -> None:
        self.conn = conn

    @classmethod
    async def open(cls, url: str, token: str | None = None, *, init: bool = True,
                   origin: str | None = None) -> GraphQLWS:
        conn = await connect(url, subprotocols=["graphql-transport-ws"],  # type: ignore[list-item]
                             origin=origin, max_queue=None)  # type: ignore[arg-type]
        client = cls(conn)
        if init:
            await client.send({"type": "connection_init",
                               "payload": {"authorization": f"Bearer {token}"} if token else {}})
            ack = await client.receive(5)
            assert ack["type"] == "connection_ack", ack
        return client

    async def send(self, message: dict[str, Any]) -> None:
        await self.conn.send(json.dumps(message))

    async def receive(self, wait: float = 5.0) -> dict[str, Any]:
        message: dict[str, Any] = json.loads(await asyncio.wait_for(self.conn.recv(), wait))
        return message

    async def subscribe(self, op_id: str, query: str, variables: dict[str, Any] | None = None) -> None:
        await self.send({"id": op_id, "type": "subscribe",
                         "payload": {"query": query, "variables": variables or {}}})

    async def next_data(self, wait: float = 5.0) -> dict[str, Any]:
        """The next ``next`` payload's data (pings are answered, errors raise)."""
        while True:
            message = await self.receive(wait)
            if message["type"] == "ping":
                await self.send({"type": "pong"})
                continue
            if message["type"] == "next":
                payload: dict[str, Any] = message["payload"]
                if payload.get("errors"):
                    raise StreamError(payload["errors"])
                data: dict[str, Any] = payload["data"]
                return data
            if message["type"] == "error":
                raise StreamError(message["payload"])
            if message["type"] == "complete":
                raise StreamError([{"message": "complete"}])

    async def close(self) -> None:
        await self.conn.close()


class StreamError(Exception):
    def __init__(self, errors: list[dict[str, Any]]) -> None:
        super().__init__(errors)
        self.errors = errors

    @property
    def code(self) -> str | None:
        code: str | None = (self.errors[0].get("extensions") or {}).get("code")
        return code


@contextlib.contextmanager
def compiled_and_resolved(database_url: str, log_dir: Path) -> Iterator[tuple[ServerProcess, ServerProcess]]:
    """Two servers on one database: one compiling what it can into single statements (the default), one running
    everything through the resolvers (``RUJUK_COMPILED_READS=0``). Neither may log a traceback."""
    compiled = ServerProcess(database_url, log_dir, RUJUK_COMPILED_READS="1").start()
    resolved = ServerProcess(database_url, log_dir, RUJUK_COMPILED_READS="0").start()
    try:
        yield compiled, resolved
    finally:
        compiled.stop()
        resolved.stop()
    for server in (compiled, resolved):
        assert "Traceback" not in server.log.read_text()
