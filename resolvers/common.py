"""What every resolver shares: running one service inside the operation's unit of work, ids."""

from __future__ import annotations

import datetime as dt
from collections.abc import Awaitable, Callable
from typing import TypeVar

import strawberry
from sqlalchemy.ext.asyncio import AsyncSession

from domain.actor import Actor
from domain.errors import DomainError, NotFound
from domain.events import PENDING_EVENTS
from schema.relay import pk_of
from server.context import Context

T = TypeVar("T")
Info = strawberry.Info[Context, None]


async def attempt(info: Info, work: Callable[[AsyncSession, Actor], Awaitable[T]]) -> T:
    """Run one service call all or nothing: if it fails, everything it wrote (rows and pending events) is
    undone and the error propagates; the operation's transaction itself is committed by the boundary.

    The first change of a unit of work (for a request of one mutation, the only one) runs without a savepoint:
    until then the transaction holds only reads (the actor's account), so a failure rolls the whole transaction
    back, which undoes exactly this call, without the two round trips of ``SAVEPOINT`` and ``RELEASE``. A later
    change runs in a savepoint, so that its failure keeps the changes before it."""
    ctx = info.context
    actor = ctx.require_actor()
    async with ctx.db() as session:
        unit = ctx.unit
        pending: list[object] = session.info.setdefault(PENDING_EVENTS, [])
        mark = len(pending)
        if unit.changed:
            try:
                async with session.begin_nested():
                    return await work(session, actor)
            except DomainError:
                del pending[mark:]
                raise
        unit.changed = True
        try:
            return await work(session, actor)
        except Exception:
            del pending[mark:]
            unit.changed = False
            await session.rollback()
            # the rollback expired every object read so far: the loaders must read them again, not hand out
            # expired rows (which would try to load lazily, outside the async context)
            unit.loaders = None
            raise


async def read(info: Info, work: Callable[[AsyncSession, Actor], Awaitable[T]]) -> T:
    """Run one read-only service call on the operation's session."""
    ctx = info.context
    actor = ctx.require_actor()
    async with ctx.db() as session:
        return await work(session, actor)


def aware(value: dt.datetime | None, *, field: str) -> dt.datetime | None:
    """A time from the client must carry its UTC offset: a bare local time is ambiguous across WIB/WITA/WIT."""
    if value is not None and value.tzinfo is None:
        raise DomainError("give the time with its UTC offset, e.g. 2026-11-23T09:30:00+07:00", field=field,
                          code="INVALID_TIME")
    return value


def pk(gid: strawberry.ID | str, type_name: str, *, field: str = "id") -> int:
    value = pk_of(str(gid), type_name)
    if value is None:
        raise NotFound(f"not a {type_name} id", field=field, code="INVALID_ID")
    return value


def optional_pk(gid: strawberry.ID | str | None, type_name: str, *, field: str) -> int | None:
    return None if gid is None else pk(gid, type_name, field=field)
