"""A lean WebSocket client (RFC 6455) for the fan-out consoles: one asyncio protocol per socket, frames parsed
in place. The fan-out measures how fast the server gets each event to thousands of sockets; with a general
client library every received message also costs the load generator a task wake-up, a future and an
iterator step, and at thousands of sockets on the same two cores the generator would mostly measure itself
(as httpx did for the HTTP figures, see ``bench.http``).

Only what the consoles need: the opening handshake with a subprotocol (the server's ``Sec-WebSocket-Accept``
is checked), masked text frames out, text frames in (fragmented or not), pings answered, the closing
handshake. Each complete text message goes to ``on_message(text, arrived_at)``, with the wall clock read as
the bytes arrive."""

from __future__ import annotations

import asyncio
import base64
import os
import struct
import time
from collections.abc import Callable
from urllib.parse import urlsplit

from server.websocket import BINARY, CLOSE, CONTINUATION, PING, PONG, TEXT, accept_key, payload_length
from server.websocket import frame as _frame


def frame(opcode: int, payload: bytes) -> bytes:
    """One final, masked client frame."""
    return _frame(opcode, payload, os.urandom(4))


class WebSocketError(ConnectionError):
    pass


class Connection(asyncio.Protocol):
    def __init__(self, loop: asyncio.AbstractEventLoop, request: bytes, accept: bytes, subprotocol: str,
                 on_message: Callable[[str, float], None]) -> None:
        self.loop = loop
        self.request = request
        self.accept = accept
        self.subprotocol = subprotocol
        self.on_message = on_message
        self.transport: asyncio.Transport | None = None
        self.buffer = bytearray()
        self.opened: asyncio.Future[None] = loop.create_future()
        self.closed: asyncio.Future[int] = loop.create_future()
        self.fragments: list[bytes] = []
        self.handshaken = False

    # asyncio.Protocol
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]  # uvloop's transports are not asyncio's classes
        transport.write(self.request)  # type: ignore[attr-defined]

    def data_received(self, data: bytes) -> None:
        now = time.time()
        self.buffer += data
        try:
            if not self.handshaken and not self._handshake():
                return
            self._frames(now)
        except WebSocketError as exc:
            self._fail(exc)

    def connection_lost(self, exc: Exception | None) -> None:
        self._fail(WebSocketError("the server closed the connection"))
        if not self.closed.done():
            self.closed.set_result(1006)

    # parsing
    def _handshake(self) -> bool:
        end = self.buffer.find(b"\r\n\r\n")
        if end < 0:
            return False
        head = bytes(self.buffer[:end]).decode("latin-1").split("\r\n")
        del self.buffer[:end + 4]
        status = head[0].split(" ", 2)
        if len(status) < 2 or status[1] != "101":
            raise WebSocketError(f"handshake refused: {head[0]}")
        headers = {}
        for line in head[1:]:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        if headers.get("sec-websocket-accept", "").encode() != self.accept:
            raise WebSocketError("wrong Sec-WebSocket-Accept")
        if headers.get("sec-websocket-protocol") != self.subprotocol:
            raise WebSocketError(f"subprotocol not accepted: {headers.get('sec-websocket-protocol')}")
        self.handshaken = True
        if not self.opened.done():
            self.opened.set_result(None)
        return True

    def _frames(self, now: float) -> None:
        buf = self.buffer
        while len(buf) >= 2:
            first, second = buf[0], buf[1]
            if second & 0x80:
                raise WebSocketError("the server masked a frame")
            length = payload_length(buf)
            if length is None:
                return
            n, at = length
            if len(buf) < at + n:
                return
            payload = bytes(buf[at:at + n])
            del buf[:at + n]
            opcode, fin = first & 0x0F, first & 0x80
            if opcode in (TEXT, BINARY, CONTINUATION):
                self.fragments.append(payload)
                if fin:
                    message = b"".join(self.fragments)
                    self.fragments = []
                    self.on_message(message.decode(), now)
            elif opcode == PING:
                self._write(frame(PONG, payload))
            elif opcode == CLOSE:
                code = struct.unpack_from("!H", payload)[0] if len(payload) >= 2 else 1005
                self._write(frame(CLOSE, payload[:2]))
                if not self.closed.done():
                    self.closed.set_result(code)
                if self.transport is not None:
                    self.transport.close()
                return

    # sending
    def _write(self, data: bytes) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(data)

    def send(self, text: str) -> None:
        self._write(frame(TEXT, text.encode()))

    def _fail(self, exc: Exception) -> None:
        if not self.opened.done():
            self.opened.set_exception(exc)
        if self.transport is not None:
            self.transport.close()

    async def close(self) -> None:
        """The closing handshake: a close frame, then the server's answer (at most 2 s)."""
        if self.transport is None or self.transport.is_closing():
            return
        self._write(frame(CLOSE, struct.pack("!H", 1000)))
        try:
            async with asyncio.timeout(2.0):
                await asyncio.shield(self.closed)
        except TimeoutError:
            pass
        finally:
            self.transport.close()


async def connect(url: str, subprotocol: str, on_message: Callable[[str, float], None]) -> Connection:
    """Open ``ws://host:port/path`` with ``subprotocol``; returns once the server accepted it (at most 30 s)."""
    parts = urlsplit(url)
    if parts.scheme != "ws" or parts.hostname is None:
        raise ValueError(f"only ws://host:port URLs: {url}")
    host, port = parts.hostname, parts.port or 80
    key = base64.b64encode(os.urandom(16))
    accept = accept_key(key)
    request = (f"GET {parts.path or '/'} HTTP/1.1\r\nHost: {host}:{port}\r\nUpgrade: websocket\r\n"
               f"Connection: Upgrade\r\nSec-WebSocket-Key: {key.decode()}\r\nSec-WebSocket-Version: 13\r\n"
               f"Sec-WebSocket-Protocol: {subprotocol}\r\n\r\n").encode()
    loop = asyncio.get_running_loop()
    _, conn = await loop.create_connection(lambda: Connection(loop, request, accept, subprotocol, on_message),
                                           host, port)
    try:
        async with asyncio.timeout(30):
            await asyncio.shield(conn.opened)
    except BaseException:
        if conn.transport is not None:
            conn.transport.close()
        raise
    return conn
