"""Idempotency keys for intake mutations.

The key is claimed with ``INSERT ... ON CONFLICT DO UPDATE`` (counting the attempts) inside the operation's
transaction, one statement whether the call is the first or a replay: a new row has made one attempt. A
concurrent call with the same key blocks on the unique index until the first commits, then finds the
stored result and returns it; if the first rolled back, the second claims the key itself. So a key
replayed, even concurrently, creates one row.

A call that creates a row can have its id reserved by the claim itself (``reserve=``): the claim takes the
next id of that table's identity and records it as the key's result in the same statement, and the call
then inserts its row with that id. The key and its result are thus written in one round trip, and are
committed, or rolled back, together.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any

from sqlalchemy import bindparam, func, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from domain.actor import Actor
from domain.base import Base
from domain.errors import DomainError, IdempotencyConflict
from domain.events import IdempotencyKey

MAX_KEY_LENGTH = 100


@dataclass(frozen=True, slots=True)
class Claim:
    #: the id stored by an earlier call with the same key: return its result, do nothing else
    earlier: int | None = None
    #: for a first call with ``reserve=``: the id its new row must take (already recorded as the key's result)
    reserved: int | None = None


_KEYS = Base.metadata.tables[IdempotencyKey.__tablename__]


@functools.cache
def _claiming(reserve: str | None) -> Any:
    """Claim a key (reserving, as its result, the next id of the table ``reserve``), or count one more attempt at
    it; RETURNING what is stored. A Core statement on the table (not the ORM's bulk INSERT), built once per table."""
    result = None if reserve is None else func.nextval(func.pg_get_serial_sequence(reserve, "id"))
    stmt = insert(_KEYS).values(actor_id=bindparam("actor_id"), key=bindparam("key"),
                                operation=bindparam("operation"), result_id=result)
    return (stmt.on_conflict_do_update(index_elements=[_KEYS.c.actor_id, _KEYS.c.key],
                                       set_={"attempts": _KEYS.c.attempts + 1})
            .returning(_KEYS.c.attempts, _KEYS.c.operation, _KEYS.c.result_id))


async def claim(session: AsyncSession, *, actor: Actor, key: str | None, operation: str,
                reserve: type[Base] | None = None) -> Claim:
    """Claim ``key`` for this call. ``Claim.earlier`` is the id stored by an earlier call with the same key;
    when it is ``None`` this call is the first and must do the work: then either insert its row with
    ``Claim.reserved`` as id (with ``reserve=``, the model of that row) or call :func:`complete`."""
    if key is None:
        return Claim()
    if not key.strip() or len(key) > MAX_KEY_LENGTH:
        raise DomainError(f"an idempotency key has 1 to {MAX_KEY_LENGTH} characters", field="idempotencyKey",
                          code="INVALID_IDEMPOTENCY_KEY")
    row = (await session.execute(_claiming(None if reserve is None else reserve.__tablename__),
                                 {"actor_id": actor.id, "key": key, "operation": operation})).one()
    if row.attempts == 1:  # inserted: this call is the first
        return Claim(reserved=row.result_id)
    if row.operation != operation or row.result_id is None:
        # the count of attempts is rolled back with the rest of the call
        raise IdempotencyConflict("this idempotency key was already used for another operation",
                                  field="idempotencyKey")
    return Claim(earlier=int(row.result_id))


async def complete(session: AsyncSession, *, actor: Actor, key: str | None, result_id: int) -> None:
    """Record the result of a first call claimed without ``reserve=``."""
    if key is None:
        return
    await session.execute(
        update(IdempotencyKey)
        .where(IdempotencyKey.actor_id == actor.id, IdempotencyKey.key == key)
        .values(result_id=result_id)
    )
