"""Idempotency keys for intake mutations.

The key is claimed with ``INSERT ... ON CONFLICT DO NOTHING`` inside the operation's transaction. A
concurrent call with the same key blocks on the unique index until the first commits, then finds the
stored result and returns it; if the first rolled back, the second claims the key itself. So a key
replayed, even concurrently, creates one row.
"""

from __future__ import annotations

from sqlalchemy import select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from domain.actor import Actor
from domain.errors import DomainError, IdempotencyConflict
from domain.events import IdempotencyKey

MAX_KEY_LENGTH = 100


async def claim(session: AsyncSession, *, actor: Actor, key: str | None, operation: str) -> int | None:
    """Claim ``key`` for this call. Returns the id stored by an earlier call with the same key, or
    ``None`` when this call is the first and must do the work (then call :func:`complete`)."""
    if key is None:
        return None
    if not key.strip() or len(key) > MAX_KEY_LENGTH:
        raise DomainError(f"an idempotency key has 1 to {MAX_KEY_LENGTH} characters", field="idempotencyKey",
                          code="INVALID_IDEMPOTENCY_KEY")
    claimed = await session.scalar(
        insert(IdempotencyKey)
        .values(actor_id=actor.id, key=key, operation=operation)
        .on_conflict_do_nothing()
        .returning(IdempotencyKey.key)
    )
    if claimed is not None:
        return None
    row = (await session.execute(
        select(IdempotencyKey.operation, IdempotencyKey.result_id)
        .where(IdempotencyKey.actor_id == actor.id, IdempotencyKey.key == key)
    )).one()
    if row.operation != operation or row.result_id is None:
        raise IdempotencyConflict("this idempotency key was already used for another operation",
                                  field="idempotencyKey")
    await session.execute(
        update(IdempotencyKey)
        .where(IdempotencyKey.actor_id == actor.id, IdempotencyKey.key == key)
        .values(attempts=IdempotencyKey.attempts + 1)
    )
    return int(row.result_id)


async def complete(session: AsyncSession, *, actor: Actor, key: str | None, result_id: int) -> None:
    if key is None:
        return
    await session.execute(
        update(IdempotencyKey)
        .where(IdempotencyKey.actor_id == actor.id, IdempotencyKey.key == key)
        .values(result_id=result_id)
    )
