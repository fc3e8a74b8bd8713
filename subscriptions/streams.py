"""Subscription streams: replay what the client missed from the event log, then go live through the hub,
with no gap and no duplicate at the seam.

The listener is registered at the hub *before* the replay, at hub position ``H``: the replay reads the
log from the client's cursor up to ``H`` and the listener delivers everything above ``H``. Each event is
checked against the subscriber's scope, and the account is re-checked every ``RECHECK_SECONDS`` so a
deactivated account or a changed scope ends the stream.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import replace

from domain.actor import Actor
from domain.complaints.queries import complaints_by_ids
from domain.errors import DomainError, Unauthenticated
from domain.events import latest_event_id, read_changes
from domain.numbers import cursor
from domain.staff.models import ApiKey
from domain.staff.service import active_account, actor_of
from server.context import Services
from subscriptions.hub import EventRecord, Predicate, Revoked, SlowConsumer

REPLAY_PAGE = 500
RECHECK_SECONDS = 30.0


class StreamEnded(DomainError):
    code = "RESUBSCRIBE"


class KeyRevoked(Unauthenticated):
    """The API key behind the stream was revoked: the whole socket is closed."""


def parse_cursor(after: str | None) -> int | None:
    if after is None:
        return None
    parsed = cursor(after)
    if parsed is None:
        raise DomainError("not a cursor of the event log", field="after", code="INVALID_CURSOR")
    return parsed


def slow_consumer(seen: int) -> DomainError:
    """What a subscriber that fell behind is told: where to resume."""
    return DomainError(f"you fell behind: subscribe again with after: \"{seen}\"", field="after", code="SLOW_CONSUMER")


async def recheck(services: Services, actor: Actor) -> None:
    async with services.sessionmaker() as session:
        try:
            staff = await active_account(session, staff_id=actor.id)
            key = await session.get(ApiKey, actor.key_id) if actor.key_id is not None else None
        except DomainError:
            raise Unauthenticated("the account is no longer active", code="UNAUTHENTICATED") from None
    if actor.key_id is not None:
        if key is None or key.revoked_at is not None:
            raise KeyRevoked("the API key was revoked", code="UNAUTHENTICATED")
        return
    if replace(actor_of(staff), username=actor.username) != actor:
        raise StreamEnded("your role or area changed: subscribe again")


async def _replay(services: Services, actor: Actor, accept: Predicate, after: int,
                  until: int) -> AsyncIterator[EventRecord]:
    """Events after ``after`` up to ``until`` from the log, in cursor order (every one, accepted or not, so
    the caller can advance its position)."""
    cursor = str(after)
    while True:
        async with services.sessionmaker() as session:
            rows, has_more, cursor = await read_changes(session, actor=actor, after=cursor, first=REPLAY_PAGE,
                                                        until=until)
        for row in rows:
            yield EventRecord.of(row)
        if not has_more:
            return


async def events(services: Services, actor: Actor, accept: Predicate,
                 after: int | None) -> AsyncIterator[EventRecord]:
    """Every event in the actor's scope that ``accept`` takes, after cursor ``after`` (or from now)."""
    if actor.programs is not None:
        narrowed = program_limited(services, actor)
        async for record in _events(services, actor, accept, after):
            if await narrowed(record):
                yield record
        return
    async for record in _events(services, actor, accept, after):
        yield record


def program_limited(services: Services, actor: Actor) -> Callable[[EventRecord], Awaitable[bool]]:
    """A partner key limited to programs sees a complaint's events only when the complaint concerns them."""

    async def visible(record: EventRecord) -> bool:
        if record.complaint_id is None:
            return True
        async with services.sessionmaker() as session:
            found = await complaints_by_ids(session, actor=actor, ids=[record.complaint_id])
        return bool(found)

    return visible


async def _events(services: Services, actor: Actor, accept: Predicate,
                  after: int | None) -> AsyncIterator[EventRecord]:
    hub = services.hub
    if hub is None:
        raise RuntimeError("subscriptions need the event hub")

    def predicate(record: EventRecord) -> bool:
        return actor.covers(record.region_code) and accept(record)

    if after is None:
        # "from now" is the newest committed event, which this process's hub may not have read yet
        async with services.sessionmaker() as session:
            after = await latest_event_id(session)
    seen = after
    # a long replay runs before the listener exists, so live events do not pile up in its queue meanwhile
    while hub.position - seen > REPLAY_PAGE:
        async for record in _replay(services, actor, accept, seen, hub.position):
            seen = record.id
            if accept(record):
                yield record
    listener = hub.register(predicate, key_id=actor.key_id)
    checked = time.monotonic()
    try:
        async for record in _replay(services, actor, accept, seen, listener.start):
            seen = record.id
            if accept(record):
                yield record
        while True:
            try:
                live = await listener.get(wait=RECHECK_SECONDS)
            except Revoked:
                raise KeyRevoked("the API key was revoked", code="UNAUTHENTICATED") from None
            except SlowConsumer:
                raise slow_consumer(seen) from None
            if time.monotonic() - checked > RECHECK_SECONDS:
                await recheck(services, actor)
                checked = time.monotonic()
            # the hub may be behind the cursor the client resumed from (another process served it): skip what
            # the client has already seen
            if live is not None and live.id > seen:
                seen = live.id
                yield live
    finally:
        hub.unregister(listener)


async def coalesced(source: AsyncIterator[EventRecord], *, interval: float) -> AsyncIterator[int]:
    """Yield at most once per ``interval`` seconds while events keep arriving: the last event id seen."""
    last_push = 0.0
    pending: int | None = None
    iterator = source.__aiter__()
    next_event: asyncio.Task[EventRecord] | None = None
    try:
        while True:
            if next_event is None:
                next_event = asyncio.ensure_future(iterator.__anext__())
            wait = None if pending is None else max(0.0, last_push + interval - time.monotonic())
            done, _ = await asyncio.wait({next_event}, timeout=wait)
            if next_event in done:
                pending = next_event.result().id
                next_event = None
            if pending is not None and time.monotonic() - last_push >= interval:
                last_push = time.monotonic()
                yield pending
                pending = None
    finally:
        if next_event is not None:
            next_event.cancel()
            # the source is still inside __anext__ until the cancellation lands; only then can it be closed
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await next_event
        close = getattr(iterator, "aclose", None)
        if close is not None:
            await close()
