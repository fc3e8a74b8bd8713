"""The per-operation context: the actor, and one unit of work (session, transaction, loaders) at a time.

An HTTP request is one operation in one task. A WebSocket carries several operations, each in its own
task, over one shared context; a subscription opens a short unit of work per event. So the unit of work
lives in a context variable: every operation task (and the tasks graphql-core spawns for sibling fields,
which inherit the variable) sees its own unit, never another operation's session.

Sibling resolvers run concurrently and an ``AsyncSession`` must not be used by two of them at once, so
every use of the session goes through :meth:`Context.db`, which serialises them with the unit's lock.
The operation boundary (:class:`server.unit_of_work.UnitOfWork`) opens the unit, commits once at the end
when the operation succeeded (rolls back otherwise), and only then publishes the events it wrote.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from starlette.requests import HTTPConnection

from domain.actor import Actor
from domain.crypto import PersonalDataCipher
from domain.errors import DomainError, Unauthenticated
from domain.events import Change, audit, write_events
from domain.staff.tokens import TokenSigner
from server.settings import Settings

if TYPE_CHECKING:
    from resolvers.loaders import Loaders
    from subscriptions.hub import EventHub

log = logging.getLogger(__name__)

Publisher = Callable[[list[tuple[int, str]]], Awaitable[None]]


@dataclass(slots=True)
class Services:
    """What the process opened once at start and every operation shares."""

    settings: Settings
    sessionmaker: async_sessionmaker[AsyncSession]
    cipher: PersonalDataCipher
    signer: TokenSigner
    publish: Publisher
    hub: EventHub | None = None
    #: sends a raw notice to every process (through the broadcaster)
    notify: Callable[[str], Awaitable[None]] | None = None

    async def announce_revocation(self, key_id: int) -> None:
        """End the open streams of a revoked API key, in this process at once and in the others by notice."""
        if self.hub is not None:
            self.hub.revoke_key(key_id)
        if self.notify is not None:
            await self.notify(json.dumps({"revokedKey": key_id}))


@dataclass
class Unit:
    """One unit of work: a session and its transaction, the loaders reading through it, and what the
    operation did that must be recorded when it commits."""

    owner: Context
    session: AsyncSession | None = None
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    loaders: Loaders | None = None
    #: member ids whose NIK was shown unmasked (audited once at commit)
    personal_data_reads: set[int] = field(default_factory=set)
    #: what to do once the unit has committed (never if it rolls back)
    after_commit: list[Callable[[], Awaitable[None]]] = field(default_factory=list)
    #: a change (one service call of a mutation) has run in this transaction and is to be kept: a later change
    #: must then run in a savepoint, so that its failure undoes only itself (see ``resolvers.common.attempt``)
    changed: bool = False
    #: set when the unit has ended; a resolver still running then (a sibling of a failed non-null field, which
    #: graphql-core does not wait for) gets an error instead of a session
    closed: bool = False


_current: ContextVar[Unit | None] = ContextVar("rujuk_unit_of_work", default=None)
_publishing: set[asyncio.Task[None]] = set()


async def _publish(services: Services, events: list[tuple[int, str]]) -> None:
    try:
        await asyncio.wait_for(services.publish(events), timeout=5)
    except Exception as exc:  # the log is the record: a lost wake-up delays an event, never loses it
        log.warning("publishing %d case events failed (%s); subscribers catch up by polling", len(events),
                    type(exc).__name__)


@dataclass
class Context:
    services: Services
    request: HTTPConnection | None = None
    actor: Actor | None = None
    #: why the request carried credentials but has no actor (bad or expired token, database unavailable)
    auth_error: Exception | None = None
    request_id: str = ""
    #: graphql-transport-ws ``connection_init`` payload
    connection_params: dict[str, Any] | None = None
    #: the credential of an HTTP request whose actor was recalled, not yet confirmed against the database
    #: (see :meth:`server.app.RujukGraphQL.confirm`); ``None`` once confirmed or loaded
    unconfirmed: Any = None
    credential: str | None = None

    @property
    def settings(self) -> Settings:
        return self.services.settings

    @property
    def cipher(self) -> PersonalDataCipher:
        return self.services.cipher

    @property
    def unit(self) -> Unit:
        """This task's unit of work, opened on first use."""
        unit = _current.get()
        if unit is None or unit.owner is not self:
            unit = Unit(owner=self)
            _current.set(unit)
        return unit

    def unit_open(self) -> bool:
        """Whether this task holds a unit of work with a session already (e.g. one that authenticated)."""
        unit = _current.get()
        return unit is not None and unit.owner is self and unit.session is not None and not unit.closed

    @property
    def loaders(self) -> Loaders:
        unit = self.unit
        if unit.loaders is None:
            from resolvers.loaders import Loaders

            unit.loaders = Loaders(self)
        return unit.loaders

    @property
    def personal_data_reads(self) -> set[int]:
        return self.unit.personal_data_reads

    def after_commit(self, action: Callable[[], Awaitable[None]]) -> None:
        self.unit.after_commit.append(action)

    def require_actor(self) -> Actor:
        if self.unconfirmed is not None:  # only a compiled read may use a recalled actor, which it confirms
            raise RuntimeError("the request's actor was used before it was confirmed")
        if self.actor is None:
            raise self.auth_error or Unauthenticated("log in first: send 'Authorization: Bearer <token>'")
        return self.actor

    @asynccontextmanager
    async def db(self) -> AsyncIterator[AsyncSession]:
        """The unit's session, for one resolver at a time."""
        unit = self.unit
        async with unit.lock:
            if unit.closed:
                raise DomainError("the operation has already ended", code="INVALID")
            if unit.session is None:
                unit.session = self.services.sessionmaker()
            yield unit.session

    @property
    def origin(self) -> str | None:
        if self.request is None or self.request.client is None:
            return None
        return self.request.client.host

    async def _audit_reads(self, session: AsyncSession, unit: Unit) -> None:
        if unit.personal_data_reads:
            await audit(session, actor=self.actor, action="READ_PERSONAL_DATA", entity_type="Member", entity_id=None,
                        detail={"members": sorted(unit.personal_data_reads)}, origin=self.origin)

    async def finish(self, *, success: bool, change: str | None = None) -> None:
        """End this task's unit: commit when it succeeded, roll back otherwise; publish its events after
        the commit. The next use of the context opens a fresh unit."""
        unit = _current.get()
        if unit is None or unit.owner is not self:
            return
        _current.set(None)
        await unit.lock.acquire()  # let a resolver that is using the session finish with it first
        unit.closed = True
        unit.lock.release()
        session = unit.session
        if session is None:
            return
        events: list[tuple[int, str]] = []
        follow_ups: list[Callable[[], Awaitable[None]]] = []
        try:
            if success:
                await self._audit_reads(session, unit)
                # the events, with the operation's CHANGE entry in the audit log, in the statement that writes them
                events = await write_events(session, change=Change(change, self.actor, self.origin) if change else None)
                follow_ups = unit.after_commit
                await session.commit()
            else:
                await session.rollback()
                if unit.personal_data_reads:
                    # the operation failed, but what it showed was shown: the audit entry still commits
                    await self._audit_reads(session, unit)
                    await session.commit()
        finally:
            # a subscription whose client went away is cancelled; the connection still goes back to the pool
            await asyncio.shield(session.close())
        for follow_up in follow_ups:
            try:
                await follow_up()
            except Exception:  # a notice that fails must not turn a committed change into an error
                log.warning("an after-commit action failed", exc_info=True)
        if events:
            publish_committed(self.services, events)


def publish_committed(services: Services, events: list[tuple[int, str]]) -> None:
    """Send the wake-up for committed events alongside the answer (a slow broadcaster must not slow writes)."""
    task = asyncio.create_task(_publish(services, events))
    _publishing.add(task)
    task.add_done_callback(_publishing.discard)


async def abandon_unit() -> None:
    """Roll back and release this task's unit of work if one is still open (its operation never ran)."""
    unit = _current.get()
    if unit is not None and not unit.closed:
        await unit.owner.finish(success=False)
