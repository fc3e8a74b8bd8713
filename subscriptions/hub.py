"""The per-process event hub: reads each batch of new case events once and fans it out to every local
subscriber whose filter (scope included) accepts it.

Wake-ups arrive through broadcaster (a message with event ids); they only say "look now". The hub reads
``case_events WHERE id > position`` itself, so a lost or duplicated wake-up costs nothing but delay, and it
also looks every ``poll_interval`` seconds on its own. Event ids follow commit order (see
:mod:`domain.events`), so reading after the last id seen never skips an event.

Each subscriber has a bounded queue. One that cannot keep up is cut off with the cursor of the last
event it was given, to resume from, instead of growing the server's memory.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import json
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from broadcaster import Broadcast
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from domain.events import CaseEvent, latest_event_id
from server.observability import EVENT_LAG, EVENTS_READ

if TYPE_CHECKING:
    from subscriptions.fanout import SharedStreams

log = logging.getLogger(__name__)

CHANNEL = "rujuk_case_events"


@dataclass(frozen=True, slots=True)
class EventRecord:
    """An immutable copy of one case event: what travels to subscribers (never an ORM object)."""

    id: int
    kind: str
    occurred_at: dt.datetime
    region_code: str
    household_id: int | None
    complaint_id: int | None
    referral_id: int | None
    actor_id: int | None
    data: Mapping[str, Any]

    @classmethod
    def of(cls, row: CaseEvent) -> EventRecord:
        return cls(id=row.id, kind=row.kind, occurred_at=row.occurred_at, region_code=row.region_code,
                   household_id=row.household_id, complaint_id=row.complaint_id, referral_id=row.referral_id,
                   actor_id=row.actor_id, data=dict(row.data))


Predicate = Callable[[EventRecord], bool]


class Sink(Protocol):
    """What the hub fans events out to: one subscriber's :class:`Listener`, or a shared stream."""

    @property
    def size(self) -> int:
        """How many subscriptions it serves."""
        ...

    def offer(self, record: EventRecord) -> None: ...

    def revoke_key(self, key_id: int) -> None: ...

    def end(self) -> None:
        """The hub stops."""


class SlowConsumer(Exception):
    """The subscriber's queue overflowed; it should resume after the last event it took."""


class Revoked(Exception):
    """The API key the subscriber authenticated with was revoked."""


class Listener:
    """One subscriber's place at the hub. Gets every accepted event with an id above ``start``."""

    def __init__(self, predicate: Predicate, *, start: int, maxsize: int, key_id: int | None = None) -> None:
        self.predicate = predicate
        self.start = start
        self.key_id = key_id
        self._queue: asyncio.Queue[EventRecord | None] = asyncio.Queue(maxsize=maxsize)
        self.overflowed = False
        self.revoked = False

    size = 1

    def revoke_key(self, key_id: int) -> None:
        if self.key_id == key_id:
            self.revoke()

    def end(self) -> None:
        self.overflowed = True
        with contextlib.suppress(asyncio.QueueFull):
            self._queue.put_nowait(None)

    def revoke(self) -> None:
        self.revoked = True
        while not self._queue.empty():
            self._queue.get_nowait()
        self._queue.put_nowait(None)

    def offer(self, record: EventRecord) -> None:
        if self.overflowed or not self.predicate(record):
            return
        try:
            self._queue.put_nowait(record)
        except asyncio.QueueFull:
            self.overflowed = True
            # drop what is queued: the subscriber resumes from the log after what it has already taken
            while not self._queue.empty():
                self._queue.get_nowait()
            self._queue.put_nowait(None)

    async def get(self, wait: float | None = None) -> EventRecord | None:
        """The next event, or ``None`` after ``wait`` seconds without one. Raises :class:`SlowConsumer`."""
        try:
            record = await asyncio.wait_for(self._queue.get(), wait)
        except TimeoutError:
            return None
        if record is None:
            raise Revoked if self.revoked else SlowConsumer
        return record


class EventHub:
    def __init__(self, sessionmaker: async_sessionmaker[AsyncSession], broadcast: Broadcast, *,
                 poll_interval: float = 2.0, batch: int = 1000, queue_size: int = 1000) -> None:
        self._sessionmaker = sessionmaker
        self._broadcast = broadcast
        self.poll_interval = poll_interval
        self.batch = batch
        self.queue_size = queue_size
        self.position = 0
        self.reads = 0
        self._listeners: set[Sink] = set()
        self.revoked_keys: set[int] = set()
        #: this process's shared subscription streams (created by the first socket that subscribes)
        self.shared: SharedStreams | None = None
        self._wake = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self._read_lock = asyncio.Lock()
        #: the newest event id announced as committed (by this process's writes or another's wake-ups)
        self._committed = 0

    @property
    def subscribers(self) -> int:
        return sum(sink.size for sink in self._listeners)

    async def start(self) -> None:
        async with self._sessionmaker() as session:
            self.position = await latest_event_id(session)
        self._tasks = [asyncio.create_task(self._wake_ups(), name="event-hub-wake-ups"),
                       asyncio.create_task(self._run(), name="event-hub")]

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if self.shared is not None:
            self.shared.stop()
        for sink in list(self._listeners):
            sink.end()

    def register(self, predicate: Predicate, *, key_id: int | None = None) -> Listener:
        listener = Listener(predicate, start=self.position, maxsize=self.queue_size, key_id=key_id)
        if key_id is not None and key_id in self.revoked_keys:
            listener.revoke()
        self._listeners.add(listener)
        return listener

    def revoke_key(self, key_id: int) -> None:
        """End at once every stream of this process that runs on a revoked API key."""
        self.revoked_keys.add(key_id)
        for sink in list(self._listeners):
            sink.revoke_key(key_id)

    def unregister(self, listener: Listener) -> None:
        self._listeners.discard(listener)

    def attach(self, sink: Sink) -> None:
        """Offer every event after the current :attr:`position` to ``sink`` (which filters for itself)."""
        self._listeners.add(sink)

    def detach(self, sink: Sink) -> None:
        self._listeners.discard(sink)

    def wake(self, committed: int = 0) -> None:
        """Look at the log now; ``committed``: the newest id of the events whose commit is announced."""
        self._committed = max(self._committed, committed)
        self._wake.set()

    async def _wake_ups(self) -> None:
        while True:
            try:
                async with self._broadcast.subscribe(CHANNEL) as subscriber:
                    while True:
                        event = await subscriber.get()
                        self._notice(event.message)
                        self._wake.set()
            except asyncio.CancelledError:
                raise
            except Exception:  # keep listening; the poll covers the gap
                log.exception("event hub: wake-up subscription failed; retrying")
                await asyncio.sleep(1)

    def _notice(self, message: str) -> None:
        """Wake-ups carry event ids; a revocation notice names an API key whose streams must end."""
        with contextlib.suppress(ValueError, TypeError, AttributeError):
            notice = json.loads(message)
            revoked = notice.get("revokedKey")
            if isinstance(revoked, int):
                self.revoke_key(revoked)
            ids = notice.get("ids")
            if isinstance(ids, list) and ids and all(isinstance(i, int) for i in ids):
                self._committed = max(self._committed, *ids)

    async def _run(self) -> None:
        while True:
            polled = False
            try:
                await asyncio.wait_for(self._wake.wait(), timeout=self.poll_interval)
            except TimeoutError:
                polled = True
            self._wake.clear()
            try:
                await self.catch_up(polled=polled)
            except asyncio.CancelledError:
                raise
            except Exception:  # the database may be away for a moment; the next round retries
                log.warning("event hub: reading new events failed; retrying", exc_info=True)
                await asyncio.sleep(min(self.poll_interval, 1.0))

    async def catch_up(self, *, polled: bool = True) -> int:
        """Read every event after the current position (in batches) and fan it out; returns how many. With no
        listeners, only move the position past them: to the newest event announced (committed events are
        announced with their ids, and every id below a committed one has committed: see :mod:`domain.events`),
        or, ``polled``, to the newest in the log."""
        async with self._read_lock:
            if not self._listeners:  # nobody here to offer them to: only move past them
                latest = self._committed
                if polled:  # (an event whose wake-up was lost)
                    async with self._sessionmaker() as session:
                        latest = await latest_event_id(session)
                if not self._listeners:  # (one that registered meanwhile starts before them: read them for it)
                    self.position = max(self.position, latest)
                    return 0
            total = 0
            while True:
                async with self._sessionmaker() as session:
                    rows = list(await session.scalars(
                        select(CaseEvent).where(CaseEvent.id > self.position).order_by(CaseEvent.id)
                        .limit(self.batch)))
                self.reads += 1
                if rows:
                    EVENTS_READ.inc(len(rows))
                    EVENT_LAG.set(max(0.0, (dt.datetime.now(dt.UTC) - rows[-1].occurred_at).total_seconds()))
                for row in rows:
                    record = EventRecord.of(row)
                    for listener in list(self._listeners):
                        listener.offer(record)
                    self.position = record.id
                total += len(rows)
                if len(rows) < self.batch:
                    return total
