"""caseEvents, intake, workloadChanged, myAssignments: thin generators over :mod:`subscriptions.streams`.

Each event is resolved in a short unit of work of its own, opened in the operation's task before the event
is produced and closed as soon as it has been sent, so no connection is held while waiting for the next one.
Run by a shared stream (:mod:`subscriptions.fanout`), the events come from the stream's feed, and each result
goes to every socket that shares it.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncGenerator, AsyncIterator

from starlette.websockets import WebSocket

from domain.actor import Actor
from domain.complaints import queries as complaints
from domain.errors import NotFound
from domain.events import EventKind
from domain.regions import covers, is_valid_code
from resolvers.common import Info, optional_pk
from schema import inputs
from schema.types.events import CaseEvent
from schema.types.workload import WorkloadEntry, WorkloadUpdate
from server.context import Context
from subscriptions import streams
from subscriptions.fanout import SharedContext
from subscriptions.hub import EventRecord, Predicate

INTAKE_KINDS = frozenset({EventKind.HOUSEHOLD_REGISTERED.value, EventKind.COMPLAINT_FILED.value,
                          EventKind.COMPLAINT_RESUBMITTED.value})
WORKLOAD_INTERVAL = 1.0


async def _guarded(ctx: Context, source: AsyncIterator[EventRecord]) -> AsyncIterator[EventRecord]:
    """A revoked API key ends not just this stream but the socket it came on (close code 4403)."""
    try:
        async for record in source:
            yield record
    except streams.KeyRevoked:
        if isinstance(ctx.request, WebSocket):
            with contextlib.suppress(Exception):
                await ctx.request.close(code=4403, reason="API key revoked")
        raise


def _events(ctx: Context, actor: Actor, accept: Predicate, after: str | None) -> AsyncIterator[EventRecord]:
    """The events this subscription resolves: its own stream, or the feed of the shared stream running it (which
    replays each member's missed events itself, so the cursor is only checked here)."""
    cursor = streams.parse_cursor(after)
    if isinstance(ctx, SharedContext) and ctx.stream is not None:
        return ctx.stream.records(actor, accept)
    return _guarded(ctx, streams.events(ctx.services, actor, accept, cursor))


def _region(code: str | None) -> str | None:
    if code is not None and not is_valid_code(code):
        raise NotFound("not a Kemendagri region code", field="regionCode", code="INVALID_REGION_CODE")
    return code


async def case_events(info: Info, filter: inputs.CaseEventFilter | None,
                      after: str | None) -> AsyncGenerator[CaseEvent, None]:
    ctx = info.context
    actor = ctx.require_actor()
    f = filter or inputs.CaseEventFilter()
    region = _region(f.region_code)
    kinds = {k.value for k in f.kinds or []}
    complaint_id = optional_pk(f.complaint_id, "Complaint", field="filter.complaintId")
    household_id = optional_pk(f.household_id, "Household", field="filter.householdId")

    def accept(e: EventRecord) -> bool:
        return ((region is None or covers(region, e.region_code)) and (not kinds or e.kind in kinds)
                and (complaint_id is None or e.complaint_id == complaint_id)
                and (household_id is None or e.household_id == household_id))

    async for record in _events(ctx, actor, accept, after):
        ctx.unit  # noqa: B018 - the event's unit of work, opened in this task before its fields fan out
        yield CaseEvent.from_row(record)
        await ctx.finish(success=True)  # sent: give the connection back before waiting for the next event


async def intake(info: Info, region_code: str | None, after: str | None) -> AsyncGenerator[CaseEvent, None]:
    ctx = info.context
    actor = ctx.require_actor()
    region = _region(region_code)

    def accept(e: EventRecord) -> bool:
        return e.kind in INTAKE_KINDS and (region is None or covers(region, e.region_code))

    async for record in _events(ctx, actor, accept, after):
        ctx.unit  # noqa: B018 - the event's unit of work, opened in this task before its fields fan out
        yield CaseEvent.from_row(record)
        await ctx.finish(success=True)  # sent: give the connection back before waiting for the next event


async def my_assignments(info: Info, after: str | None) -> AsyncGenerator[CaseEvent, None]:
    ctx = info.context
    actor = ctx.require_actor()

    def accept(e: EventRecord) -> bool:
        return e.complaint_id is not None and actor.id in (e.data.get("assigneeId"), e.data.get("previousAssigneeId"))

    async for record in _events(ctx, actor, accept, after):
        ctx.unit  # noqa: B018 - the event's unit of work, opened in this task before its fields fan out
        yield CaseEvent.from_row(record)
        await ctx.finish(success=True)  # sent: give the connection back before waiting for the next event


async def workload_changed(info: Info, region_code: str | None) -> AsyncGenerator[WorkloadUpdate, None]:
    """The workload board now, then again whenever complaints in the region change (at most once a second)."""
    ctx = info.context
    actor = ctx.require_actor()
    region = _region(region_code)

    async def figures(cursor: int | None) -> WorkloadUpdate:
        async with ctx.db() as session:
            rows = await complaints.workload(session, actor=actor, region_code=region)
        return WorkloadUpdate(region_code=region, cursor=str(cursor) if cursor is not None else None,
                              entries=[WorkloadEntry.from_row(r) for r in rows])

    def accept(e: EventRecord) -> bool:
        return e.complaint_id is not None and (region is None or covers(region, e.region_code))

    source = _guarded(ctx, streams.events(ctx.services, actor, accept, None))
    await ctx.finish(success=True)
    yield await figures(None)
    await ctx.finish(success=True)  # sent: give the connection back before waiting for changes
    async for cursor in streams.coalesced(source, interval=WORKLOAD_INTERVAL):
        yield await figures(cursor)
        await ctx.finish(success=True)
