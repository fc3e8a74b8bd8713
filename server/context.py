"""The per-operation context: one session and one transaction, the actor, loaders, pending events.

Sibling resolvers run concurrently, and an ``AsyncSession`` must not be used by two of them at once,
so every use of the session goes through :meth:`Context.db`, which serialises them with a lock. The
operation boundary (:class:`server.unit_of_work.UnitOfWork`) commits once at the end when the
operation succeeded, rolls back otherwise, and only then publishes the events the operation wrote.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from starlette.requests import HTTPConnection

from domain.actor import Actor
from domain.crypto import PersonalDataCipher
from domain.errors import DomainError, Unauthenticated
from domain.events import audit, write_events
from domain.staff.tokens import TokenSigner
from server.settings import Settings

if TYPE_CHECKING:
    from resolvers.loaders import Loaders

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


@dataclass
class Context:
    services: Services
    request: HTTPConnection | None = None
    actor: Actor | None = None
    #: why the request carried credentials but has no actor (bad or expired token)
    auth_error: DomainError | None = None
    request_id: str = ""
    _session: AsyncSession | None = None
    _lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    _loaders: Loaders | None = None
    #: member ids whose NIK was shown unmasked in this operation (audited once at commit)
    personal_data_reads: set[int] = field(default_factory=set)
    response_headers: dict[str, str] = field(default_factory=dict)

    @property
    def settings(self) -> Settings:
        return self.services.settings

    @property
    def cipher(self) -> PersonalDataCipher:
        return self.services.cipher

    @property
    def loaders(self) -> Loaders:
        if self._loaders is None:
            from resolvers.loaders import Loaders

            self._loaders = Loaders(self)
        return self._loaders

    def require_actor(self) -> Actor:
        if self.actor is None:
            raise self.auth_error or Unauthenticated("log in first: send 'Authorization: Bearer <token>'")
        return self.actor

    @asynccontextmanager
    async def db(self) -> AsyncIterator[AsyncSession]:
        """The operation's session, for one resolver at a time."""
        async with self._lock:
            if self._session is None:
                self._session = self.services.sessionmaker()
            yield self._session

    @property
    def origin(self) -> str | None:
        if self.request is None or self.request.client is None:
            return None
        return self.request.client.host

    async def finish(self, *, success: bool) -> None:
        """Commit when the operation succeeded, roll back otherwise; publish events after commit."""
        session, self._session = self._session, None
        if session is None:
            return
        events: list[tuple[int, str]] = []
        try:
            if success:
                if self.personal_data_reads:
                    await audit(session, actor=self.actor, action="READ_PERSONAL_DATA", entity_type="Member",
                                entity_id=None, detail={"members": sorted(self.personal_data_reads)},
                                origin=self.origin)
                events = await write_events(session)
                await session.commit()
            else:
                await session.rollback()
        finally:
            await session.close()
        if events:
            try:
                await self.services.publish(events)
            except Exception:  # the log is the record: a lost wake-up delays an event, never loses it
                log.exception("publishing %d case events failed", len(events))


def context_value(ctx: Any) -> Context:
    assert isinstance(ctx, Context)
    return ctx
