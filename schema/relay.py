"""Relay conventions: global object ids, the Node interface, cursor connections."""

from __future__ import annotations

import base64
import binascii
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

import strawberry

from domain.numbers import bigint

T = TypeVar("T")


def to_global_id(type_name: str, key: int | str) -> strawberry.ID:
    return strawberry.ID(base64.urlsafe_b64encode(f"{type_name}:{key}".encode()).decode().rstrip("="))


def from_global_id(gid: str) -> tuple[str, str] | None:
    """``(type name, key)``, or ``None`` for a string that is not a global id."""
    if len(gid) > 100:
        return None
    try:
        raw = base64.urlsafe_b64decode(gid + "=" * (-len(gid) % 4)).decode()
    except (ValueError, binascii.Error, UnicodeDecodeError):
        return None
    type_name, sep, key = raw.partition(":")
    if not sep or not type_name or not key:
        return None
    return type_name, key


def pk_of(gid: str, expected: str) -> int | None:
    """The integer primary key of a global id of type ``expected``; ``None`` when it is not one."""
    parsed = from_global_id(gid)
    if parsed is None or parsed[0] != expected:
        return None
    return bigint(parsed[1])


@strawberry.interface(description="An object with a global id, fetchable with `node(id:)`.")
class Node:
    id: strawberry.ID = strawberry.field(description="Global, opaque id of the object.")


@strawberry.type(description="Where a page sits in its list.")
class PageInfo:
    has_next_page: bool = strawberry.field(description="Whether more items follow `endCursor`.")
    has_previous_page: bool = strawberry.field(
        description="Whether this page was fetched with `after` (items precede it).")
    start_cursor: str | None = strawberry.field(description="Cursor of the first item of the page.")
    end_cursor: str | None = strawberry.field(description="Pass as `after` to fetch the next page.")


@strawberry.type(description="One item of a connection with its cursor.")
class Edge(Generic[T]):
    cursor: str = strawberry.field(description="Opaque position of this item; pass as `after` to continue.")
    node: T = strawberry.field(description="The item.")


@strawberry.type(description="A page of items, keyset-paginated with `first`/`after`.")
class Connection(Generic[T]):
    edges: list[Edge[T]] = strawberry.field(description="The items of this page with their cursors.")
    page_info: PageInfo = strawberry.field(description="Cursors and whether more items follow.")
    _count: strawberry.Private[Callable[[], Awaitable[int]]]

    @strawberry.field(description="Number of items matching the filter, over all pages (one extra COUNT query; "
                      "ask only when you show it).")
    async def total_count(self) -> int:
        return await self._count()
