"""The root Subscription type (graphql-transport-ws): live, resumable streams over the case event log."""

from __future__ import annotations

from collections.abc import AsyncGenerator
from typing import Annotated

import strawberry

from resolvers import subscriptions as s
from schema import inputs
from schema.types.events import CaseEvent
from schema.types.workload import WorkloadUpdate
from server.context import Context

Info = strawberry.Info[Context, None]
A = strawberry.argument
AFTER = ("Cursor of the last event you saw: first replays what you missed from the event log, then goes live, "
         "with no gap and no duplicate. Omit to start from now.")
REGION = "Only this region's subtree (within your area)."


@strawberry.type(description="Live streams. Authenticate in `connection_init` with "
                 "`{\"authorization\": \"Bearer <token>\"}`. A stream that ends with SLOW_CONSUMER or RESUBSCRIBE "
                 "should be subscribed again with the last cursor.")
class Subscription:
    @strawberry.subscription(description="Every case event in your area (or the filter's part of it).")
    async def case_events(
        self, info: Info,
        filter: Annotated[inputs.CaseEventFilter | None, A(description="Conditions the events meet.")] = None,
        after: Annotated[str | None, A(description=AFTER)] = None,
    ) -> AsyncGenerator[CaseEvent, None]:
        async for event in s.case_events(info, filter, after):
            yield event

    @strawberry.subscription(description="New intake: households registered, complaints filed or resubmitted.")
    async def intake(
        self, info: Info,
        region_code: Annotated[str | None, A(description=REGION)] = None,
        after: Annotated[str | None, A(description=AFTER)] = None,
    ) -> AsyncGenerator[CaseEvent, None]:
        async for event in s.intake(info, region_code, after):
            yield event

    @strawberry.subscription(description="The workload board now, then again when complaints in the region change "
                             "(at most once a second).")
    async def workload_changed(
        self, info: Info, region_code: Annotated[str | None, A(description=REGION)] = None,
    ) -> AsyncGenerator[WorkloadUpdate, None]:
        async for update in s.workload_changed(info, region_code):
            yield update

    @strawberry.subscription(description="Events of complaints assigned to you or moved away from you.")
    async def my_assignments(
        self, info: Info, after: Annotated[str | None, A(description=AFTER)] = None,
    ) -> AsyncGenerator[CaseEvent, None]:
        async for event in s.my_assignments(info, after):
            yield event
