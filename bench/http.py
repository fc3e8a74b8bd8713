"""A lean HTTP/1.1 client for the load generators: keep-alive connections on asyncio protocols, responses
parsed by httptools (the parser uvicorn uses). A general client (httpx) spends more CPU per request than the
servers under test do, on the same two cores, so it would mostly measure itself; this one sends a prepared
request and collects the status and body, nothing more.

Only what the benchmarks need: requests with a body and a few headers, responses with ``Content-Length`` or
chunked bodies, a connection that the server closes is replaced."""

from __future__ import annotations

import asyncio
from urllib.parse import urlsplit

import httptools


class HTTPError(ConnectionError):
    pass


class _Connection(asyncio.Protocol):
    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.transport: asyncio.Transport | None = None
        self.parser = httptools.HttpResponseParser(self)
        self.body: list[bytes] = []
        self.waiter: asyncio.Future[tuple[int, bytes]] | None = None
        self.closed = False
        self.keep_alive = True

    # asyncio.Protocol
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]  # uvloop's transports are not asyncio's classes

    def data_received(self, data: bytes) -> None:
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError as exc:
            self._fail(HTTPError(f"bad response: {exc}"))
            self.close()

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self._fail(HTTPError("the server closed the connection"))

    # httptools callbacks
    def on_body(self, body: bytes) -> None:
        self.body.append(body)

    def on_message_complete(self) -> None:
        self.keep_alive = self.parser.should_keep_alive()
        waiter, self.waiter = self.waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_result((self.parser.get_status_code(), b"".join(self.body)))

    def _fail(self, exc: Exception) -> None:
        waiter, self.waiter = self.waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_exception(exc)

    async def exchange(self, request: bytes) -> tuple[int, bytes]:
        assert self.transport is not None
        self.body = []
        self.waiter = self.loop.create_future()
        self.transport.write(request)
        return await self.waiter

    def close(self) -> None:
        self.closed = True
        if self.transport is not None:
            self.transport.close()


class Client:
    """At most ``connections`` requests at once to one ``http://host:port``; idle connections are reused."""

    def __init__(self, base: str, *, connections: int = 64, timeout: float = 60) -> None:
        parts = urlsplit(base)
        if parts.scheme != "http" or parts.hostname is None:
            raise ValueError(f"only http://host:port bases: {base}")
        self.host, self.port = parts.hostname, parts.port or 80
        self.authority = f"{self.host}:{self.port}".encode()
        self.timeout = timeout
        self._slots = asyncio.Semaphore(connections)
        self._idle: list[_Connection] = []
        self._all: set[_Connection] = set()

    async def _connection(self) -> _Connection:
        while self._idle:
            conn = self._idle.pop()
            if not conn.closed:
                return conn
        loop = asyncio.get_running_loop()
        _, conn = await loop.create_connection(lambda: _Connection(loop), self.host, self.port)
        self._all.add(conn)
        return conn

    async def request(self, method: str, path: str, body: bytes = b"",
                      headers: dict[str, str] | None = None) -> tuple[int, bytes]:
        head = [f"{method} {path} HTTP/1.1".encode(), b"host: " + self.authority,
                b"content-length: " + str(len(body)).encode()]
        head += [f"{name}: {value}".encode("latin-1") for name, value in (headers or {}).items()]
        raw = b"\r\n".join(head) + b"\r\n\r\n" + body
        async with self._slots:
            conn = await self._connection()
            try:
                async with asyncio.timeout(self.timeout):
                    status, payload = await conn.exchange(raw)
            except BaseException:
                conn.close()
                self._all.discard(conn)
                raise
            if conn.keep_alive and not conn.closed:
                self._idle.append(conn)
            else:
                conn.close()
                self._all.discard(conn)
            return status, payload

    async def close(self) -> None:
        for conn in self._all:
            conn.close()
        self._all.clear()
        self._idle.clear()
