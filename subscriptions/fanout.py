"""Shared subscription streams: each event is resolved and serialised once per distinct subscription, and the
same text goes to every socket that shares it.

Sockets share a stream when their subscriptions have the same key (:mod:`subscriptions.sharing`). The stream
runs the subscription once, through strawberry and every schema extension (unit of work per event, error
policy), with a context of its own whose source of events is the stream's feed instead of a hub listener per
socket.

The feed is one FIFO of items. A live item is an event the hub offered; a replay item is an event one member
missed before it joined (read from the log after the member's ``after``). A member is promoted to the live
set at a feed sequence number once its replay has caught up with the stream's hub position, in the same step
(no ``await`` between): events up to that position reach it by replay, later ones live, so there is no gap
and no duplicate at the seam.

What stays per member (:mod:`subscriptions.members`): its cursor, its actor, and only while its socket is slow
to take what it is sent, a bounded outbox. Actors are re-checked every ``RECHECK_SECONDS`` by one sweep per
process over the distinct actors of all members; a revoked API key closes its members' sockets at once.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections import deque
from collections.abc import AsyncIterator, Coroutine, Hashable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from graphql import GraphQLError
from prometheus_client import Counter
from sqlalchemy.ext.asyncio import AsyncSession
from strawberry.types.execution import ExecutionResult, PreExecutionError
from strawberry.utils.aio import aclosing

from domain.actor import Actor
from domain.errors import DomainError
from domain.events import audit, latest_event_id, read_changes
from server.context import Context, Services, Unit
from server.observability import REGISTRY
from subscriptions import streams
from subscriptions.hub import EventHub, EventRecord, Predicate
from subscriptions.members import Connection, Member, encode, frame
from subscriptions.sharing import Plan

if TYPE_CHECKING:
    from starlette.requests import HTTPConnection
    from strawberry.schema import BaseSchema

log = logging.getLogger(__name__)

RESULTS = Counter("rujuk_shared_subscription_results_total", "Subscription results executed by shared streams",
                  registry=REGISTRY)
SENDS = Counter("rujuk_shared_subscription_sends_total", "Subscription results sent to sockets by shared streams",
                registry=REGISTRY)



@dataclass
class SharedContext(Context):
    """The context a shared stream executes in. Its events come from the stream's feed; personal data shown
    is audited for every actor (and origin) it was sent to."""

    stream: SharedStream | None = None

    async def _audit_reads(self, session: AsyncSession, unit: Unit) -> None:
        if not unit.personal_data_reads or self.stream is None:
            return
        members = sorted(unit.personal_data_reads)
        for actor, origin in sorted(self.stream.recipients, key=lambda r: (r[0].id, r[0].key_id or 0, r[1] or "")):
            await audit(session, actor=actor, action="READ_PERSONAL_DATA", entity_type="Member", entity_id=None,
                        detail={"members": members}, origin=origin)


Item = tuple[int, EventRecord, Member | None]


class SharedStream:
    """One subscription execution shared by every member with the same :class:`Plan` key."""

    def __init__(self, registry: SharedStreams, plan: Plan, actor: Actor, request: HTTPConnection | None) -> None:
        self.registry = registry
        self.key = plan.key
        self.plan = plan
        self.members: dict[Member, None] = {}
        self.live: dict[Member, None] = {}
        self.items: deque[Item] = deque()
        self.live_items = 0
        self.seq = 0
        #: the hub position up to which this stream has been offered events
        self.position = 0
        self.accept: Predicate | None = None
        self.current: Item | None = None
        #: who the result being finished was sent to (for the audit of personal data)
        self.recipients: set[tuple[Actor, str | None]] = set()
        self.ready = asyncio.Event()
        self.ended = False
        self._wake = asyncio.Event()
        self.context = SharedContext(services=registry.services, request=request, actor=actor,
                                     request_id=uuid.uuid4().hex[:16], stream=self)
        self.task = asyncio.create_task(self._run(), name="shared-subscription")

    @property
    def size(self) -> int:
        return len(self.members)

    # the hub's side

    def offer(self, record: EventRecord) -> None:
        self.position = record.id
        if not self.live or self.accept is None or not self.accept(record):
            return
        if self.live_items >= self.registry.queue_size:
            self._overflow()
            return
        self.seq += 1
        self.items.append((self.seq, record, None))
        self.live_items += 1
        self._wake.set()

    def revoke_key(self, key_id: int) -> None:
        for member in list(self.members):
            if member.actor.key_id == key_id:
                member.close_socket(4403, "API key revoked")

    def end(self) -> None:
        self.close()

    def _overflow(self) -> None:
        """The stream fell a whole queue behind: every member resumes from its own cursor."""
        log.warning("shared subscription fell %d events behind; %d subscribers told to resume", self.live_items,
                    len(self.members))
        for member in list(self.members):
            member.end(streams.slow_consumer(member.seen))
        self.close()

    # the members' side

    def join(self, member: Member, after: int | None) -> None:
        self.members[member] = None
        if member.actor.key_id is not None and member.actor.key_id in self.registry.hub.revoked_keys:
            member.close_socket(4403, "API key revoked")
            return
        member.joining = asyncio.create_task(self._catch_up(member, after), name="shared-subscription-join")

    def remove(self, member: Member) -> None:
        self.members.pop(member, None)
        self.live.pop(member, None)
        if not self.members:
            self.close()

    async def _catch_up(self, member: Member, after: int | None) -> None:
        """Replay what the member missed through the feed, then promote it to the live set."""
        try:
            await self.ready.wait()
            if self.ended or member.closed:
                return
            if after is None:  # "from now" is the newest committed event, which the hub may not have read yet
                async with self.registry.services.sessionmaker() as session:
                    after = await latest_event_id(session)
            member.seen = member.written = after
            seen = after
            while not (self.ended or member.closed):
                target = self.position
                if seen >= target:
                    member.joined_seq = self.seq + 1
                    self.live[member] = None
                    return
                async with self.registry.services.sessionmaker() as session:
                    rows, has_more, _ = await read_changes(session, actor=member.actor, after=str(seen),
                                                           first=streams.REPLAY_PAGE, until=target)
                if self.ended or member.closed or self.accept is None:
                    return
                for row in rows:
                    record = EventRecord.of(row)
                    if self.accept(record):
                        self.seq += 1
                        self.items.append((self.seq, record, member))
                        member.replaying += 1
                self._wake.set()
                seen = rows[-1].id if has_more and rows else target
                if has_more and member.replaying:  # a long replay goes page by page
                    member.drained = asyncio.Event()
                    await member.drained.wait()
                    member.drained = None
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # the database went away while joining: the member is told, as before
            member.end(exc)
        finally:
            member.joining = None

    # the feed the shared execution reads (through the subscription's resolver)

    async def records(self, actor: Actor, accept: Predicate) -> AsyncIterator[EventRecord]:
        def predicate(record: EventRecord) -> bool:
            return actor.covers(record.region_code) and accept(record)

        narrowed = streams.program_limited(self.registry.services, actor) if actor.programs is not None else None
        hub = self.registry.hub
        self.accept = predicate
        self.position = hub.position
        hub.attach(self)
        self.ready.set()
        try:
            while True:
                if not self.items:
                    self._wake.clear()
                    await self._wake.wait()
                    continue
                item = self.items.popleft()
                member = item[2]
                if member is None:
                    self.live_items -= 1
                else:
                    member.replaying -= 1
                    if not member.replaying and member.drained is not None:
                        member.drained.set()
                    if member.closed:
                        continue
                if narrowed is not None and not await narrowed(item[1]):
                    continue
                self.current = item
                yield item[1]
        finally:
            hub.detach(self)

    # the execution

    async def _run(self) -> None:
        registry = self.registry
        try:
            source = await registry.schema.subscribe(self.plan.query, variable_values=self.plan.variables,
                                                     context_value=self.context,
                                                     operation_name=self.plan.operation_name)
            first = True
            async with aclosing(source):
                async for result in source:
                    if first and isinstance(result, PreExecutionError):
                        self._reject(result)
                        return
                    first = False
                    item, self.current = self.current, None
                    self._deliver(item, self._payload(result))
            for member in list(self.members):
                member.end()
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.exception("shared subscription failed (request %s)", self.context.request_id)
            for member in list(self.members):
                member.end(exc)
        finally:
            self.close()

    def _payload(self, result: ExecutionResult) -> str:
        payload: dict[str, Any] = {"data": result.data}
        if result.errors:
            payload["errors"] = [error.formatted for error in result.errors]
        if result.extensions:
            payload["extensions"] = result.extensions
        return self.registry.encode(payload)

    def _deliver(self, item: Item | None, payload: str) -> None:
        audited = bool(self.context.unit.personal_data_reads)
        self.recipients = set()
        frames: dict[str, str] = {}
        sent = 0

        def send(member: Member, event_id: int) -> None:
            nonlocal sent
            sent += 1
            text = frames.get(member.op_id)
            if text is None:
                text = frames[member.op_id] = frame(member.op_id, "next", payload)
            if event_id:
                member.seen = event_id
            member.push(text, event_id)
            if audited:
                self.recipients.add((member.actor, member.origin))

        RESULTS.inc()
        if item is None:  # not an event: an error of the stream itself, for everyone
            for member in list(self.members):
                send(member, 0)
        else:
            seq, record, target = item
            if target is not None:
                if not target.closed and record.id > target.seen:
                    send(target, record.id)
            else:
                for member in tuple(self.live):
                    if member.joined_seq is not None and member.joined_seq <= seq and record.id > member.seen:
                        send(member, record.id)
        SENDS.inc(sent)

    def _reject(self, result: PreExecutionError) -> None:
        """The document does not validate (with these variables): as strawberry answers it."""
        from strawberry.subscriptions.protocols.graphql_transport_ws.handlers import BaseGraphQLTransportWSHandler

        errors = result.errors or []
        reason = BaseGraphQLTransportWSHandler._get_pre_execution_close_reason(errors[0]) if errors else None
        payload = self.registry.encode([error.formatted for error in errors])
        for member in list(self.members):
            if reason is not None:
                member.close_socket(4400, reason)
                continue
            member.leave()
            member.connection.forget(member.op_id)
            member._send_final(frame(member.op_id, "error", payload))

    def close(self) -> None:
        if self.ended:
            return
        self.ended = True
        self.ready.set()
        self.registry.discard(self)
        self.registry.hub.detach(self)
        for member in list(self.members):
            member.end()
        if self.task is not asyncio.current_task():
            self.task.cancel()


# --- the registry --------------------------------------------------------------------------------------------------

class SharedStreams:
    """This process's shared streams, by key; the sweep that re-checks their actors."""

    def __init__(self, services: Services, schema: BaseSchema, hub: EventHub) -> None:
        self.services = services
        self.schema = schema
        self.hub = hub
        self.encode = encode
        self.queue_size = hub.queue_size
        self._streams: dict[Hashable, SharedStream] = {}
        self._background: set[asyncio.Future[Any]] = set()
        self._sweep: asyncio.Task[None] | None = None
        from server.unit_of_work import ErrorPolicy

        self._policy = ErrorPolicy(production=services.settings.production)

    @classmethod
    def of(cls, services: Services, schema: BaseSchema) -> SharedStreams | None:
        hub = services.hub
        if hub is None:
            return None
        if hub.shared is None:
            hub.shared = cls(services, schema, hub)
        return hub.shared

    @property
    def subscribers(self) -> int:
        return sum(len(s.members) for s in self._streams.values())

    def join(self, connection: Connection, op_id: str, plan: Plan, ctx: Context) -> Member:
        assert ctx.actor is not None
        stream = self._streams.get(plan.key)
        if stream is None:
            stream = self._streams[plan.key] = SharedStream(self, plan, ctx.actor, ctx.request)
        member = Member(connection, op_id, ctx.actor, ctx.origin, stream)
        stream.join(member, plan.after)
        if self._sweep is None:
            self._sweep = asyncio.create_task(self._recheck_forever(), name="shared-subscriptions-recheck")
        return member

    def discard(self, stream: SharedStream) -> None:
        if self._streams.get(stream.key) is stream:
            del self._streams[stream.key]

    def spawn(self, work: Coroutine[Any, Any, Any]) -> None:
        task = asyncio.ensure_future(work)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    def error_payload(self, error: Exception) -> str:
        """An error ending a stream, as the error policy words it for any subscription."""
        graphql_error = error if isinstance(error, GraphQLError) else GraphQLError(str(error), original_error=error)
        formatted = self._policy._policy(graphql_error, "").formatted
        return self.encode({"data": None, "errors": [formatted]})

    def stop(self) -> None:
        if self._sweep is not None:
            self._sweep.cancel()
        for stream in list(self._streams.values()):
            stream.close()

    async def _recheck_forever(self) -> None:
        while True:
            await asyncio.sleep(streams.RECHECK_SECONDS)
            try:
                await self.recheck()
            except asyncio.CancelledError:
                raise
            except Exception:  # the database may be away; the next sweep tries again
                log.warning("re-checking subscribers failed; retrying at the next sweep", exc_info=True)

    async def recheck(self) -> None:
        """End the members whose account was deactivated, whose key was revoked or whose role or area changed."""
        by_actor: dict[Actor, list[Member]] = {}
        for stream in list(self._streams.values()):
            for member in stream.members:
                by_actor.setdefault(member.actor, []).append(member)
        for actor, members in by_actor.items():
            try:
                await streams.recheck(self.services, actor)
            except streams.KeyRevoked:
                for member in members:
                    member.close_socket(4403, "API key revoked")
            except DomainError as exc:
                for member in members:
                    member.end(exc)
