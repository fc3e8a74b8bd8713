"""Keyset pagination: a page is the rows after a cursor in a total order, never an OFFSET."""

from __future__ import annotations

import base64
import datetime as dt
import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from sqlalchemy import Select, bindparam, tuple_
from sqlalchemy.orm import InstrumentedAttribute

from domain.errors import DomainError, ValidationFailed

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Ordering:
    """A total order: the listed columns, ending with the primary key, all ascending or all descending."""

    name: str
    columns: tuple[InstrumentedAttribute[Any], ...]
    descending: bool

    def key(self, row: Any) -> list[Any]:
        return [getattr(row, c.key) for c in self.columns]


@dataclass(frozen=True, slots=True)
class Page(Generic[T]):
    rows: list[T]
    has_next: bool
    ordering: Ordering

    def cursor(self, row: Any) -> str:
        return encode_cursor(self.ordering, self.ordering.key(row))


def _json(value: Any) -> Any:
    if isinstance(value, dt.datetime):
        return {"t": value.isoformat()}
    return value


def _unjson(value: Any) -> Any:
    if isinstance(value, dict) and "t" in value:
        return dt.datetime.fromisoformat(value["t"])
    return value


def encode_cursor(ordering: Ordering, values: Sequence[Any]) -> str:
    raw = json.dumps([ordering.name, [_json(v) for v in values]], separators=(",", ":"))
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def decode_cursor(ordering: Ordering, cursor: str) -> list[Any]:
    try:
        name, values = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        values = [_unjson(v) for v in values]
    except (ValueError, TypeError):
        raise ValidationFailed([DomainError("not a cursor from this list", field="after", code="INVALID_CURSOR")]) \
            from None
    if name != ordering.name or not isinstance(values, list) or len(values) != len(ordering.columns):
        raise ValidationFailed([DomainError("this cursor belongs to another ordering", field="after",
                                            code="INVALID_CURSOR")])
    return values


def check_first(first: int | None, *, default: int, maximum: int) -> int:
    if first is None:
        return default
    if not 1 <= first <= maximum:
        raise ValidationFailed([DomainError(f"first is between 1 and {maximum}", field="first",
                                            code="INVALID_PAGE_SIZE")])
    return first


def cursor_parameter(i: int) -> str:
    """The name of the parameter holding the ``i``-th value of the cursor in :func:`keyset`'s condition (a
    statement kept for a list takes another cursor's values in their place)."""
    return f"cursor_{i}"


def keyset(stmt: Select[Any], ordering: Ordering, *, after: str | None, first: int) -> Select[Any]:
    cols: list[Any] = list(ordering.columns)
    if after is not None:
        values = decode_cursor(ordering, after)
        left = tuple_(*cols)
        right = tuple_(*(bindparam(cursor_parameter(i), value) for i, value in enumerate(values)))
        stmt = stmt.where(left < right if ordering.descending else left > right)
    order = [c.desc() for c in cols] if ordering.descending else [c.asc() for c in cols]
    return stmt.order_by(*order).limit(first + 1)


def page_of(rows: Sequence[T], *, first: int, ordering: Ordering) -> Page[T]:
    return Page(rows=list(rows[:first]), has_next=len(rows) > first, ordering=ordering)
