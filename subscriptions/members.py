"""A member of a shared stream: one subscription (one socket, one operation id), and how text reaches it.

Sends are started at once and usually finish at once; only a socket whose write buffer is full makes one wait,
and then what follows queues behind it in a bounded outbox. A member whose outbox overflows is cut off with
SLOW_CONSUMER and the cursor of the last event written to its socket, without holding up the other members.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections import deque
from collections.abc import Coroutine
from typing import TYPE_CHECKING, Any, Protocol

import orjson

from domain.actor import Actor
from subscriptions import streams

if TYPE_CHECKING:
    from subscriptions.fanout import SharedStream


class Connection(Protocol):
    """The socket side of a member (the graphql-transport-ws handler)."""

    async def send_text(self, text: str) -> None: ...

    async def close(self, code: int, reason: str) -> None: ...

    def forget(self, op_id: str) -> None: ...


def _begin(send: Coroutine[Any, Any, None]) -> tuple[Coroutine[Any, Any, None], Any] | None:
    """Run a send now, up to its first suspension. A WebSocket send completes without one unless the socket's
    write buffer is full; then the send and what it waits for are returned, to be finished by a task (what
    Python 3.12 calls an eager task, without a task per send in the common case)."""
    try:
        waiting_for = send.send(None)
    except StopIteration:
        return None
    return send, waiting_for


async def _finish(send: Coroutine[Any, Any, None], waiting_for: Any) -> None:
    """Drive a send that :func:`_begin` left waiting, as a task would."""
    try:
        while True:
            if waiting_for is None:
                await asyncio.sleep(0)
            else:
                await asyncio.wait((waiting_for,))
            try:
                waiting_for = send.send(None)
            except StopIteration:
                return
    finally:
        send.close()


def encode(value: object) -> str:
    """JSON text of a result (once per event, whatever the number of sockets)."""
    try:
        return orjson.dumps(value).decode()
    except TypeError:  # integers beyond 64 bits in a JSON scalar
        return json.dumps(value)


def frame(op_id: str, kind: str, payload: str | None = None) -> str:
    head = f'{{"id":{json.dumps(op_id)},"type":"{kind}"'
    return head + "}" if payload is None else f'{head},"payload":{payload}}}'


class Member:
    """One subscription (one socket, one operation id) in a shared stream."""

    __slots__ = ("actor", "closed", "connection", "drained", "joined_seq", "joining", "op_id", "origin", "outbox",
                 "pending", "replaying", "seen", "stream", "written")

    def __init__(self, connection: Connection, op_id: str, actor: Actor, origin: str | None,
                 stream: SharedStream) -> None:
        self.connection = connection
        self.op_id = op_id
        self.actor = actor
        self.origin = origin
        self.stream = stream
        #: the last event queued for this member (or the cursor it started from): what it resumes after
        self.seen = 0
        #: the last event written to its socket
        self.written = 0
        #: feed sequence number from which live events reach it; ``None`` while it catches up
        self.joined_seq: int | None = None
        self.replaying = 0
        self.drained: asyncio.Event | None = None
        self.joining: asyncio.Task[None] | None = None
        self.pending: asyncio.Future[None] | None = None
        self.outbox: deque[tuple[str, int]] | None = None
        self.closed = False

    def push(self, text: str, event_id: int = 0) -> None:
        """Send ``text`` now if the socket takes it, else queue it behind the send that waits (bounded)."""
        if self.outbox is not None:
            if len(self.outbox) >= self.stream.registry.queue_size:
                self._fell_behind()
            else:
                self.outbox.append((text, event_id))
            return
        try:
            waiting = _begin(self.connection.send_text(text))
        except Exception:  # the client went away; its handler leaves the stream when its socket ends
            self.leave()
            return
        if waiting is None:
            self.written = max(self.written, event_id)
            return
        self.outbox = deque()
        self.pending = asyncio.ensure_future(self._drain(*waiting, event_id))

    async def _drain(self, send: Coroutine[Any, Any, None], waiting_for: Any, event_id: int) -> None:
        try:
            await _finish(send, waiting_for)
            self.written = max(self.written, event_id)
            while self.outbox:
                text, event_id = self.outbox.popleft()
                await self.connection.send_text(text)
                self.written = max(self.written, event_id)
        except Exception:  # the client went away
            self.leave()
        finally:
            self.outbox = None
            self.pending = None

    def _fell_behind(self) -> None:
        """The socket does not take what it is sent: drop what waits and tell it where to resume."""
        assert self.outbox is not None
        self.outbox.clear()
        self.end(streams.slow_consumer(self.written))

    def end(self, error: Exception | None = None) -> None:
        """End this subscription: an error result (if any), then ``complete``."""
        if self.closed:
            return
        self.leave()
        self.connection.forget(self.op_id)
        if error is not None:
            self._send_final(frame(self.op_id, "next", self.stream.registry.error_payload(error)))
        self._send_final(frame(self.op_id, "complete"))

    def _send_final(self, text: str) -> None:
        if self.outbox is not None:
            self.outbox.append((text, 0))
            return
        with contextlib.suppress(Exception):
            waiting = _begin(self.connection.send_text(text))
            if waiting is not None:
                self.outbox = deque()
                self.pending = asyncio.ensure_future(self._drain(*waiting, 0))

    def close_socket(self, code: int, reason: str) -> None:
        """End this subscription by closing its whole socket (a revoked API key)."""
        self.leave()
        if self.outbox is not None:
            self.outbox.clear()
        self.stream.registry.spawn(self.connection.close(code, reason))

    def leave(self) -> None:
        """Leave the stream (the client completed the operation, went away, or was ended)."""
        if self.closed:
            return
        self.closed = True
        if self.joining is not None and self.joining is not asyncio.current_task():
            self.joining.cancel()
        if self.drained is not None:
            self.drained.set()
        self.stream.remove(self)

    def cancel_sends(self) -> None:
        if self.pending is not None:
            self.pending.cancel()
