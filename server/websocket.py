"""rujuk's WebSocket protocol for uvicorn (``--ws server.websocket:WebSocketProtocol``): RFC 6455 without
extensions, written for many long-lived, mostly idle sockets.

A supervisor console holds its socket for a whole working day and receives a few hundred bytes now and then.
uvicorn's ``websockets-sansio`` protocol keeps, for each socket, the parsed handshake request and response
(header maps), a websockets protocol object with its parser generator, an ``asyncio.Queue`` (three deques and
an Event) and another Event for flow control: about 20 KiB per socket before the application holds anything.
This protocol keeps a slotted object, the ASGI scope, a list as inbox and futures only while something waits;
the frames it writes are built in one step.

What it does, as uvicorn's protocols do: the opening handshake (version 13, a valid key, the subprotocol the
application accepts; a close before accepting answers 403), text and binary messages in and out, fragmented
messages reassembled up to ``ws_max_size``, pings answered, keep-alive pings every ``ws_ping_interval`` with a
``ws_ping_timeout``, the closing handshake in both directions (a connection that cannot finish closing, because
the peer neither answers nor reads, is aborted after the ping timeout), an application that ends without
closing closed for it (1000, or 1011 when it failed), read flow control (reading pauses between the handshake
and the application's answer, while the application has 16 messages or 64 KiB it has not taken, and while the
peer does not read what it is sent) and write flow control (``send`` waits while the transport's buffer is over
its high-water mark), 1012 on server shutdown. The application gets one ``websocket.disconnect``, again on
every later ``receive``. Protocol errors close the socket with the RFC's codes: 1002 for unmasked or malformed
frames, 1007 for text that is not UTF-8, 1009 for a message over the limit. No permessage-deflate: rujuk turns
it off anyway (its zlib state would cost ~40 KiB per socket). The ``websocket.http.response`` extension is not offered.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
import logging
import os
import struct
from typing import Any, cast
from urllib.parse import unquote

from uvicorn._types import ASGIReceiveEvent, ASGISendEvent, WebSocketScope
from uvicorn.config import Config
from uvicorn.protocols.utils import ClientDisconnected, get_local_addr, get_remote_addr, is_ssl
from uvicorn.server import ServerState

logger = logging.getLogger("uvicorn.error")

GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
CONTINUATION, TEXT, BINARY, CLOSE, PING, PONG = 0x0, 0x1, 0x2, 0x8, 0x9, 0xA
#: a handshake request larger than this is refused (431)
MAX_HANDSHAKE = 16 * 1024
#: how long a closing socket may take to deliver what was written and see the peer's close before it is aborted
#: (the ping timeout when there is one)
CLOSE_TIMEOUT = 10.0
#: reading pauses while the application has this many messages, or bytes of messages, it has not taken
INBOX_MESSAGES = 16
INBOX_BYTES = 64 * 1024
#: close codes a peer may send (RFC 6455 7.4; 1005, 1006 and 1015 are never sent on the wire)
_VALID_CLOSE = frozenset({1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1012, 1013, 1014})


class ProtocolError(Exception):
    def __init__(self, code: int, reason: str) -> None:
        super().__init__(reason)
        self.code = code
        self.reason = reason


def accept_key(key: bytes) -> bytes:
    return base64.b64encode(hashlib.sha1(key + GUID).digest())


def frame(opcode: int, payload: bytes, mask_key: bytes | None = None) -> bytes:
    """One final frame: unmasked as a server sends it, or masked with ``mask_key`` as a client must."""
    n = len(payload)
    bit = 0 if mask_key is None else 0x80
    if n < 126:
        head = bytes((0x80 | opcode, bit | n))
    elif n < 65536:
        head = struct.pack("!BBH", 0x80 | opcode, bit | 126, n)
    else:
        head = struct.pack("!BBQ", 0x80 | opcode, bit | 127, n)
    return head + payload if mask_key is None else head + mask_key + unmask(payload, mask_key)


def payload_length(buf: bytes | bytearray) -> tuple[int, int] | None:
    """The payload length a frame's header at the start of ``buf`` gives, and where that length field ends (the
    mask key, if any, follows); ``None`` while the field is incomplete."""
    n = buf[1] & 0x7F
    if n == 126:
        return (struct.unpack_from("!H", buf, 2)[0], 4) if len(buf) >= 4 else None
    if n == 127:
        return (struct.unpack_from("!Q", buf, 2)[0], 10) if len(buf) >= 10 else None
    return n, 2


def close_frame(code: int, reason: str = "") -> bytes:
    """A close frame; the reason cut to the 123 bytes a control frame allows, at a character boundary."""
    return frame(CLOSE, struct.pack("!H", code) + reason.encode()[:123].decode("utf-8", "ignore").encode())


def unmask(payload: bytes | bytearray, key: bytes) -> bytes:
    """The payload XORed with the repeated mask key (masking and unmasking are the same operation)."""
    n = len(payload)
    if not n:
        return b""
    repeated = (key * (n // 4 + 1))[:n]
    return (int.from_bytes(payload, "little") ^ int.from_bytes(repeated, "little")).to_bytes(n, "little")


def _http_response(status: str, headers: list[tuple[bytes, bytes]], body: bytes = b"") -> bytes:
    lines = [b"HTTP/1.1 " + status.encode()] + [name + b": " + value for name, value in headers]
    return b"\r\n".join(lines) + b"\r\n\r\n" + body


def _refusal(status: str, text: str, extra: list[tuple[bytes, bytes]] | None = None) -> bytes:
    body = text.encode()
    return _http_response(status, [(b"content-type", b"text/plain; charset=utf-8"),
                                   (b"content-length", str(len(body)).encode()), (b"connection", b"close"),
                                   *(extra or [])], body)


class WebSocketProtocol(asyncio.Protocol):
    __slots__ = ("config", "server_state", "app_state", "loop", "transport", "buffer", "scope", "inbox",
                 "inbox_size", "ended", "receiver", "writable", "reading", "accepted", "close_sent", "disconnected",
                 "fragments", "fragment_text", "close_timer", "ping_timer", "pong_timer", "ping_payload", "key")

    def __init__(self, config: Config, server_state: ServerState, app_state: dict[str, Any],
                 _loop: asyncio.AbstractEventLoop | None = None) -> None:
        if not config.loaded:
            config.load()  # pragma: no cover
        self.config = config
        self.server_state = server_state
        self.app_state = app_state
        self.loop = _loop or asyncio.get_event_loop()
        self.transport: asyncio.Transport = None  # type: ignore[assignment]
        self.buffer = bytearray()
        self.scope: WebSocketScope | None = None
        self.inbox: list[ASGIReceiveEvent] = []  # messages for the application, in order
        self.inbox_size = 0  # their bytes
        self.ended: ASGIReceiveEvent | None = None  # the one disconnect, given after the inbox, then every time
        self.receiver: asyncio.Future[None] | None = None
        self.writable: asyncio.Future[None] | None = None  # while the transport's buffer is over its high mark
        self.reading = True
        self.accepted = False  # the 101 was sent
        self.close_sent = False  # a close frame or a refusal went out: nothing more is sent
        self.disconnected = False
        self.fragments: bytearray | None = None
        self.fragment_text = False
        self.close_timer: asyncio.TimerHandle | None = None
        self.ping_timer: asyncio.TimerHandle | None = None
        self.pong_timer: asyncio.TimerHandle | None = None
        self.ping_payload: bytes | None = None
        self.key = b""

    # asyncio.Protocol

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)
        self.server_state.connections.add(self)  # type: ignore[arg-type]

    def connection_lost(self, exc: Exception | None) -> None:
        self._stop_keepalive()
        self.disconnected = True
        self._end({"type": "websocket.disconnect", "code": 1005 if self.accepted else 1006})
        self.server_state.connections.discard(self)
        writable, self.writable = self.writable, None
        if writable is not None and not writable.done():
            writable.set_result(None)
        if self.close_timer is not None:
            self.close_timer.cancel()
            self.close_timer = None
        if exc is None:
            self.transport.close()

    def eof_received(self) -> None:
        pass

    def pause_writing(self) -> None:
        if self.writable is None:
            self.writable = self.loop.create_future()
        self._reading()  # a peer that does not read what it is sent gets nothing more read (its pings)

    def resume_writing(self) -> None:
        writable, self.writable = self.writable, None
        if writable is not None and not writable.done():
            writable.set_result(None)
        self._reading()

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        try:
            if self.scope is None:
                self._handshake()
            elif self.accepted:
                self._frames()
            # between the handshake and the application's answer reading pauses; what came waits in the buffer
        except ProtocolError as exc:
            self._fail(exc.code, exc.reason)

    def shutdown(self) -> None:
        """The server is stopping: 1012 (service restart) to an open socket, 500 to a pending handshake."""
        self._stop_keepalive()
        if self.close_sent:
            pass  # closing already: stop waiting for the peer's answer
        elif self.accepted:
            self._end({"type": "websocket.disconnect", "code": 1012})
            self.transport.write(close_frame(1012))
            self.close_sent = True
        else:
            self._refuse("500 Internal Server Error", "Internal Server Error")
        self._close()

    # flow control and closing

    def _inbox_full(self) -> bool:
        return len(self.inbox) >= INBOX_MESSAGES or self.inbox_size >= INBOX_BYTES

    def _reading(self) -> None:
        """Read while the handshake is not yet parsed or the socket is open, the application keeps up with what
        arrives and the peer takes what is sent to it; once closing, read only for the peer's close."""
        if self.scope is None:
            want = True
        elif self.close_sent:
            want = True
        else:
            want = self.accepted and self.writable is None and not self._inbox_full()
        if want != self.reading and not self.disconnected and not self.transport.is_closing():
            self.reading = want
            if want:
                self.transport.resume_reading()
            else:
                self.transport.pause_reading()

    def _close(self) -> None:
        """Close the connection once what was written has gone out; abort it if that takes CLOSE_TIMEOUT (a peer
        that stopped reading would otherwise hold it, and the application's task, for ever)."""
        self.transport.close()
        self._deadline()

    def _deadline(self) -> None:
        if self.close_timer is None and not self.disconnected:
            # a peer that answers no ping within the ping timeout is not waited for longer when closing either
            wait = self.config.ws_ping_timeout or CLOSE_TIMEOUT
            self.close_timer = self.loop.call_later(wait, self.transport.abort)

    def _send_close(self, code: int, reason: str) -> None:
        """Start the closing handshake: the close frame, then read on for the peer's answer (until the deadline)."""
        self._end({"type": "websocket.disconnect", "code": code, "reason": reason})
        if self.disconnected or self.transport.is_closing():
            self.close_sent = True
            return
        self.transport.write(close_frame(code, reason))
        self.close_sent = True
        self._stop_keepalive()
        self._reading()
        self._deadline()

    # the opening handshake

    def _handshake(self) -> None:
        end = self.buffer.find(b"\r\n\r\n")
        if end > MAX_HANDSHAKE or (end < 0 and len(self.buffer) > MAX_HANDSHAKE):
            self._refuse("431 Request Header Fields Too Large", "Request header fields too large")
            return
        if end < 0:
            return
        head = bytes(self.buffer[:end]).split(b"\r\n")
        del self.buffer[:end + 4]
        request = head[0].split(b" ")
        headers: list[tuple[bytes, bytes]] = []
        for line in head[1:]:
            name, colon, value = line.partition(b":")
            if not colon or not name or name != name.strip():
                self._refuse("400 Bad Request", "Invalid request header")
                return
            headers.append((name.lower(), value.strip()))
        values: dict[bytes, list[bytes]] = {}
        for name, value in headers:
            values.setdefault(name, []).append(value)

        def tokens(name: bytes) -> set[bytes]:
            return {t.strip().lower() for v in values.get(name, []) for t in v.split(b",")}

        key = values.get(b"sec-websocket-key", [b""])
        try:
            valid_key = len(key) == 1 and len(base64.b64decode(key[0], validate=True)) == 16
        except (binascii.Error, ValueError):
            valid_key = False
        if len(request) != 3 or request[0] != b"GET" or request[2] != b"HTTP/1.1" or \
                b"websocket" not in tokens(b"upgrade") or b"upgrade" not in tokens(b"connection") or not valid_key:
            self._refuse("400 Bad Request", "Failed to open a WebSocket connection: invalid request.")
            return
        if values.get(b"sec-websocket-version") != [b"13"]:
            self._refuse("426 Upgrade Required", "Unsupported WebSocket version.",
                         [(b"sec-websocket-version", b"13")])
            return
        self.key = key[0]
        target = request[1].decode("latin-1")
        raw_path, _, query = target.partition("?")
        root = self.config.root_path
        self.scope = {
            "type": "websocket",
            "asgi": {"version": self.config.asgi_version, "spec_version": "2.4"},
            "http_version": "1.1",
            "scheme": "wss" if is_ssl(self.transport) else "ws",
            "server": get_local_addr(self.transport),
            "client": get_remote_addr(self.transport),
            "root_path": root,
            "path": root + unquote(raw_path),
            "raw_path": root.encode("ascii") + raw_path.encode("latin-1"),
            "query_string": query.encode("latin-1"),
            "headers": headers,
            "subprotocols": [t.strip().decode("latin-1") for v in values.get(b"sec-websocket-protocol", [])
                             for t in v.split(b",") if t.strip()],
            "state": self.app_state.copy(),
            "extensions": {},
        }
        self._put({"type": "websocket.connect"}, 0)  # and reading pauses until the application answers
        task = self.loop.create_task(self._run_asgi())
        task.add_done_callback(self.server_state.tasks.discard)
        self.server_state.tasks.add(task)

    def _refuse(self, status: str, text: str, extra: list[tuple[bytes, bytes]] | None = None) -> None:
        if not self.close_sent and not self.accepted and not self.transport.is_closing():
            self.transport.write(_refusal(status, text, extra))
        self.close_sent = True
        self._close()

    # frames from the client

    def _frames(self) -> None:
        buf = self.buffer
        limit = self.config.ws_max_size
        while len(buf) >= 2 and not self.transport.is_closing():
            first, second = buf[0], buf[1]
            if first & 0x70:
                raise ProtocolError(1002, "reserved bits set")
            if not second & 0x80:
                raise ProtocolError(1002, "unmasked frame")
            length = payload_length(buf)
            if length is None:
                return
            n, at = length
            opcode = first & 0x0F
            if opcode >= 0x8:
                if not first & 0x80 or n > 125:
                    raise ProtocolError(1002, "invalid control frame")
            elif n + (len(self.fragments) if self.fragments is not None else 0) > limit:
                raise ProtocolError(1009, "message too big")
            if len(buf) < at + 4 + n:
                return
            payload = unmask(buf[at + 4:at + 4 + n], bytes(buf[at:at + 4]))
            del buf[:at + 4 + n]
            self._frame(opcode, bool(first & 0x80), payload)

    def _frame(self, opcode: int, fin: bool, payload: bytes) -> None:
        if opcode in (TEXT, BINARY):
            if self.fragments is not None:
                raise ProtocolError(1002, "expected a continuation frame")
            if fin:
                self._message(opcode == TEXT, payload)
            else:  # one growing buffer: many small fragments cost their bytes, not an object each
                self.fragments, self.fragment_text = bytearray(payload), opcode == TEXT
        elif opcode == CONTINUATION:
            if self.fragments is None:
                raise ProtocolError(1002, "unexpected continuation frame")
            self.fragments += payload
            if fin:
                message, self.fragments = bytes(self.fragments), None
                self._message(self.fragment_text, message)
        elif opcode == PING:
            if not self.close_sent:
                self.transport.write(frame(PONG, payload))
        elif opcode == PONG:
            if self.ping_payload is not None and payload == self.ping_payload:
                self.ping_payload = None
                if self.pong_timer is not None:  # (without a timeout the next ping is already scheduled)
                    self.pong_timer.cancel()
                    self.pong_timer = None
                    self._schedule_ping()
        elif opcode == CLOSE:
            self._peer_closed(payload)
        else:
            raise ProtocolError(1002, "unknown opcode")

    def _message(self, text: bool, payload: bytes) -> None:
        if self.close_sent:
            return  # the application is past ``websocket.close``: read on until the peer's answer
        if text:
            try:
                self._put({"type": "websocket.receive", "text": payload.decode()}, len(payload))
            except UnicodeDecodeError:
                raise ProtocolError(1007, "invalid UTF-8") from None
        else:
            self._put({"type": "websocket.receive", "bytes": payload}, len(payload))

    def _peer_closed(self, payload: bytes) -> None:
        if len(payload) == 1:
            raise ProtocolError(1002, "invalid close frame")
        code, reason = 1005, ""
        if payload:
            code = struct.unpack_from("!H", payload)[0]
            if code not in _VALID_CLOSE and not 3000 <= code <= 4999:
                raise ProtocolError(1002, "invalid close code")
            try:
                reason = payload[2:].decode()
            except UnicodeDecodeError:
                raise ProtocolError(1007, "invalid UTF-8 in close reason") from None
        if self.close_sent:  # the answer to our close: the closing handshake is complete
            self._close()
            return
        self._end({"type": "websocket.disconnect", "code": code, "reason": reason})
        self.transport.write(frame(CLOSE, payload[:2]))
        self.close_sent = True
        self._stop_keepalive()
        self._close()

    def _fail(self, code: int, reason: str) -> None:
        if not self.close_sent and not self.transport.is_closing():
            self.transport.write(close_frame(code, reason))
        self.close_sent = True
        self._stop_keepalive()
        self._end({"type": "websocket.disconnect", "code": code, "reason": reason})
        self._close()

    # keep-alive

    def _schedule_ping(self) -> None:
        if self.ping_timer is not None:
            self.ping_timer.cancel()
            self.ping_timer = None
        interval = self.config.ws_ping_interval
        if interval is not None and interval > 0 and not self.close_sent:
            self.ping_timer = self.loop.call_later(interval, self._ping)

    def _ping(self) -> None:
        self.ping_timer = None
        if self.close_sent or self.transport.is_closing():
            return
        if self._inbox_full():
            # reading waits for the application, so a pong could not be read: look again later
            self._schedule_ping()
            return
        self.ping_payload = os.urandom(4)
        self.transport.write(frame(PING, self.ping_payload))
        timeout = self.config.ws_ping_timeout
        if timeout is not None:
            self.pong_timer = self.loop.call_later(timeout, self._ping_timed_out)
        else:
            self._schedule_ping()

    def _ping_timed_out(self) -> None:
        self.pong_timer = None
        self.ping_payload = None
        if self.close_sent or self.transport.is_closing():
            return
        if self._inbox_full():  # the pong may be waiting behind messages the application has not taken
            self._schedule_ping()
            return
        self._fail(1011, "keepalive ping timeout")

    def _stop_keepalive(self) -> None:
        for timer in (self.ping_timer, self.pong_timer):
            if timer is not None:
                timer.cancel()
        self.ping_timer = self.pong_timer = None

    # the ASGI side

    def _wake(self) -> None:
        receiver, self.receiver = self.receiver, None
        if receiver is not None and not receiver.done():
            receiver.set_result(None)

    def _put(self, message: ASGIReceiveEvent, size: int) -> None:
        self.inbox.append(message)
        self.inbox_size += size
        self._wake()
        self._reading()

    def _end(self, message: ASGIReceiveEvent) -> None:
        """The application's one ``websocket.disconnect`` (the first reason wins), after the messages before it."""
        if self.ended is None:
            self.ended = message
            self._wake()

    async def receive(self) -> ASGIReceiveEvent:
        while not self.inbox:
            if self.ended is not None:
                return self.ended
            self.receiver = self.loop.create_future()
            await self.receiver
        message = self.inbox.pop(0)
        if message["type"] == "websocket.receive":
            data = message.get("bytes") or message.get("text") or b""
            self.inbox_size -= len(data.encode() if isinstance(data, str) else data)
        self._reading()
        return message

    async def send(self, message: ASGISendEvent) -> None:
        while self.writable is not None and not self.disconnected:
            # shielded: a sender that is cancelled while it waits must not cancel the wait of the others
            await asyncio.shield(self.writable)
        if self.disconnected:
            raise ClientDisconnected()
        kind = message["type"]
        m: Any = message
        if not self.accepted and not self.close_sent:
            if kind == "websocket.accept":
                self._accept(m)
            elif kind == "websocket.close":
                self._end({"type": "websocket.disconnect", "code": 1006})
                self._refuse("403 Forbidden", "")
                self._log(403)
            else:
                raise RuntimeError(f"Expected ASGI message 'websocket.accept' or 'websocket.close', but got {kind!r}.")
        elif not self.close_sent:
            if self.transport.is_closing():
                raise ClientDisconnected()
            if kind == "websocket.send":
                data = m.get("bytes")
                text = m.get("text")
                if data is not None:
                    self.transport.write(frame(BINARY, data))
                elif text is not None:
                    self.transport.write(frame(TEXT, text.encode()))
            elif kind == "websocket.close":
                code = m.get("code", 1000)
                if not isinstance(code, int) or not (code in _VALID_CLOSE or 3000 <= code <= 4999):
                    raise RuntimeError(f"Invalid WebSocket close code {code!r}.")
                self._send_close(code, m.get("reason") or "")
            else:
                raise RuntimeError(f"Expected ASGI message 'websocket.send' or 'websocket.close', but got {kind!r}.")
        elif self.transport.is_closing():
            raise ClientDisconnected()
        else:
            raise RuntimeError(f"Unexpected ASGI message {kind!r}, after sending 'websocket.close'.")

    def _accept(self, message: Any) -> None:
        headers = [(b"upgrade", b"websocket"), (b"connection", b"Upgrade"),
                   (b"sec-websocket-accept", accept_key(self.key))]
        headers += [(name.lower(), value) for name, value in self.server_state.default_headers]
        headers += [(bytes(name).lower(), bytes(value)) for name, value in message.get("headers") or []]
        subprotocol = message.get("subprotocol")
        if subprotocol:
            headers.append((b"sec-websocket-protocol", subprotocol.encode()))
        if self.transport.is_closing():
            return
        self.accepted = True
        self.transport.write(_http_response("101 Switching Protocols", headers))
        self._log("[accepted]")
        self._schedule_ping()
        self._reading()
        if self.buffer:  # what arrived between the handshake and the answer
            try:
                self._frames()
            except ProtocolError as exc:
                self._fail(exc.code, exc.reason)

    def _log(self, outcome: object) -> None:
        if logger.isEnabledFor(logging.INFO) and self.scope is not None:
            # the path without its query string, which could hold personal data
            logger.info('"WebSocket %s" %s', self.scope["path"], outcome)

    async def _run_asgi(self) -> None:
        assert self.scope is not None
        failed = False
        try:
            result = await self.config.loaded_app(self.scope, self.receive, self.send)
        except ClientDisconnected:
            pass
        except BaseException:
            failed = True
            logger.exception("Exception in ASGI application\n")
        else:
            if result is not None:
                logger.error("ASGI callable should return None, but returned '%s'.", result)
        if not self.accepted and not self.close_sent:
            if not failed:
                logger.error("ASGI callable returned without completing handshake.")
            self._refuse("500 Internal Server Error", "Internal Server Error")
        elif not self.close_sent:
            # the application ended without closing: close for it, so the peer sees a clean close
            self._send_close(1011 if failed else 1000, "")
        elif not self.transport.is_closing():
            self._deadline()  # waiting for the peer's answer to the close
