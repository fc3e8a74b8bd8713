"""broadcaster backends that survive what the stock ones do not.

broadcaster's PostgreSQL backend publishes on the connection it listens on and, like its Redis backend,
never reconnects: one dropped connection (``pg_terminate_backend``, a Redis restart) silently ends all
wake-ups for the life of the process. These backends keep publishing and listening on separate
connections, reconnect by themselves with backoff, and after every reconnect hand the hub a ``resync``
wake-up so it catches up from the event log whatever was announced while they were away.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any
from urllib.parse import urlparse

import asyncpg
from broadcaster import Broadcast, Event
from broadcaster._backends.base import BroadcastBackend
from broadcaster._backends.memory import MemoryBackend

log = logging.getLogger(__name__)

RESYNC = "resync"
MAX_BACKOFF = 5.0


class _Reconnecting(BroadcastBackend):
    """Listener loop with reconnection; subclasses provide one listening session and publishing."""

    def __init__(self, url: str) -> None:
        self._url = url
        self._channels: set[str] = set()
        self._queue: asyncio.Queue[Event] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None
        self._connected = asyncio.Event()
        self.reconnects = 0

    @property
    def connected(self) -> bool:
        return self._connected.is_set()

    async def connect(self) -> None:
        self._task = asyncio.create_task(self._supervise(), name=f"{type(self).__name__}-listener")
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._connected.wait(), timeout=10)

    async def disconnect(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        await self._close_publisher()

    async def subscribe(self, channel: str) -> None:
        self._channels.add(channel)
        await self._listen(channel)

    async def unsubscribe(self, channel: str) -> None:
        self._channels.discard(channel)

    async def next_published(self) -> Event:
        return await self._queue.get()

    def _deliver(self, channel: str, message: str) -> None:
        if channel in self._channels:
            self._queue.put_nowait(Event(channel=channel, message=message))

    async def _supervise(self) -> None:
        backoff = 0.1
        first = True
        while True:
            try:
                await self._open_listener()
                for channel in self._channels:
                    await self._listen(channel)
                self._connected.set()
                if not first:
                    self.reconnects += 1
                    log.warning("%s: listener reconnected; catching up from the event log", type(self).__name__)
                    for channel in self._channels:
                        self._deliver(channel, RESYNC)
                first = False
                backoff = 0.1
                await self._wait_until_lost()
            except asyncio.CancelledError:
                await self._close_listener()
                raise
            except Exception as exc:  # any failure of the listening connection: reconnect
                log.warning("%s: listener lost (%s); reconnecting", type(self).__name__, type(exc).__name__)
            self._connected.clear()
            await self._close_listener()
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, MAX_BACKOFF)

    async def _open_listener(self) -> None:
        raise NotImplementedError

    async def _listen(self, channel: str) -> None:
        raise NotImplementedError

    async def _wait_until_lost(self) -> None:
        raise NotImplementedError

    async def _close_listener(self) -> None:
        raise NotImplementedError

    async def _close_publisher(self) -> None:
        raise NotImplementedError


class PostgresBackend(_Reconnecting):
    """LISTEN/NOTIFY across the workers that share one database."""

    def __init__(self, url: str) -> None:
        super().__init__(url.replace("postgresql+asyncpg://", "postgresql://"))
        self._listener: asyncpg.Connection | None = None
        self._publisher: asyncpg.Connection | None = None
        self._publish_lock = asyncio.Lock()
        self._lost = asyncio.Event()

    async def _open_listener(self) -> None:
        self._lost.clear()
        self._listener = await asyncpg.connect(self._url, timeout=10,
                                               server_settings={"application_name": "rujuk-listener"})
        self._listener.add_termination_listener(lambda _conn: self._lost.set())

    async def _listen(self, channel: str) -> None:
        if self._listener is not None and not self._listener.is_closed():
            await self._listener.add_listener(channel, self._on_notify)

    def _on_notify(self, _conn: Any, _pid: int, channel: str, payload: str) -> None:
        self._deliver(channel, payload)

    async def _wait_until_lost(self) -> None:
        # a terminated backend is noticed by the termination listener; a silently dead network only by
        # using the connection, so probe it now and then
        while not self._lost.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._lost.wait(), timeout=5)
            if not self._lost.is_set():
                assert self._listener is not None
                await self._listener.execute("SELECT 1", timeout=5)
        raise ConnectionError("listener connection terminated")

    async def _close_listener(self) -> None:
        if self._listener is not None:
            with contextlib.suppress(Exception):
                await self._listener.close(timeout=2)
            self._listener = None

    async def publish(self, channel: str, message: Any) -> None:
        async with self._publish_lock:
            for attempt in (1, 2):
                try:
                    if self._publisher is None or self._publisher.is_closed():
                        self._publisher = await asyncpg.connect(
                            self._url, timeout=10, server_settings={"application_name": "rujuk-publisher"})
                    await self._publisher.execute("SELECT pg_notify($1, $2)", channel, str(message), timeout=5)
                    return
                except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError, TimeoutError):
                    await self._close_publisher()
                    if attempt == 2:
                        raise

    async def _close_publisher(self) -> None:
        if self._publisher is not None:
            with contextlib.suppress(Exception):
                await self._publisher.close(timeout=2)
            self._publisher = None


class RedisBackend(_Reconnecting):
    """Redis pub/sub across hosts."""

    def __init__(self, url: str) -> None:
        super().__init__(url)
        from redis import asyncio as redis

        self._redis = redis
        self._publisher = redis.Redis.from_url(url, socket_timeout=5, socket_connect_timeout=5)
        self._pubsub: Any = None
        self._listen_client: Any = None

    async def _open_listener(self) -> None:
        self._listen_client = self._redis.Redis.from_url(self._url, socket_connect_timeout=5,
                                                         health_check_interval=5)
        self._pubsub = self._listen_client.pubsub(ignore_subscribe_messages=True)
        await self._pubsub.ping()

    async def _listen(self, channel: str) -> None:
        if self._pubsub is not None:
            await self._pubsub.subscribe(channel)

    async def _wait_until_lost(self) -> None:
        while True:
            message = await self._pubsub.get_message(timeout=5.0)
            if message is None:
                await self._pubsub.ping()
                continue
            if message.get("type") == "message":
                channel = message["channel"]
                data = message["data"]
                self._deliver(channel.decode() if isinstance(channel, bytes) else channel,
                              data.decode() if isinstance(data, bytes) else str(data))

    async def _close_listener(self) -> None:
        if self._pubsub is not None:
            with contextlib.suppress(Exception):
                await self._pubsub.aclose()
            self._pubsub = None
        if self._listen_client is not None:
            with contextlib.suppress(Exception):
                await self._listen_client.aclose()
            self._listen_client = None

    async def publish(self, channel: str, message: Any) -> None:
        await self._publisher.publish(channel, str(message))

    async def _close_publisher(self) -> None:
        with contextlib.suppress(Exception):
            await self._publisher.aclose()


def make_broadcast(url: str) -> Broadcast:
    scheme = urlparse(url).scheme
    backend: BroadcastBackend
    if scheme == "memory":
        backend = MemoryBackend(url)
    elif scheme in {"postgres", "postgresql", "postgresql+asyncpg"}:
        backend = PostgresBackend(url)
    elif scheme in {"redis", "rediss"}:
        backend = RedisBackend(url)
    else:
        raise ValueError(f"unsupported broadcast URL scheme: {scheme!r} (memory, postgres, redis)")
    return Broadcast(backend=backend)
