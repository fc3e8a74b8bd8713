"""Fetching one object by id within the actor's scope (objects outside it are reported as not found)."""

from __future__ import annotations

from typing import Any, TypeVar

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from domain.actor import Actor, Op
from domain.errors import NotFound

T = TypeVar("T")


async def get_in_scope(session: AsyncSession, model: type[T], *, actor: Actor, pk: int, region_column: Any,
                       for_update: bool = False, field: str = "id", what: str) -> T:
    actor.require(Op.READ)
    stmt = actor.restrict(select(model).where(model.id == pk), region_column)  # type: ignore[attr-defined]
    if for_update:
        stmt = stmt.with_for_update()
    found = (await session.scalars(stmt.execution_options(populate_existing=True))).first()
    if found is None:
        raise NotFound(f"no such {what} in your area", field=field)
    return found
