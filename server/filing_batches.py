"""Group commit for one-statement filings (:func:`resolvers.compiled.compile_filing`).

Every filing writes its case event under the event-order lock (:data:`domain.events.EVENT_ORDER_LOCK`), held until
its transaction has committed, WAL flush included: that is what keeps event ids and ``updatedAt`` stamps in commit
order, which ``changes`` cursors and ``updatedAfter`` pulls rely on. It also means filings commit one at a time,
each paying a flush while the others wait for the lock. So a process sends the filings that arrive while one is in
the database together, as one statement (:func:`resolvers.compiled.filings`): one lock, one commit and one flush for
all of them, each filing still with its own checks, rows, event, audit entry and answer.

- A filing that finds nothing in flight is sent at once, alone (no waiting at low load).
- The others wait for the transaction in flight and go together in the next one: at most ``size``, all answering
  with the same JSON (one document, one kind of account; the others wait for a transaction of their own), so a
  transaction is always one statement, which locks its rows and claims its keys before it takes the lock (a
  transaction holding such a row or key and waiting for the lock cannot deadlock with it).
- A filing that wrote nothing (a check failed, its key was used before, even by an earlier filing of the same
  transaction) is answered by the service, as when it runs alone.
- When PostgreSQL refuses the statement (a deadlock it broke, a value it rejected), nothing of it was written:
  each filing is sent again alone, one after the other, so one bad filing fails only itself. When the database
  went away after the statement was sent, every filing in it is :class:`Unsure`, as a single one would be.
- A filing whose key is in flight in another of this process's transactions waits for that one to end.
- A filing whose request was cancelled before its transaction left is not sent.
- The events of a transaction are published together once it has committed: one wake-up for the hubs, not
  one per filing.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import asyncpg
from sqlalchemy.ext.asyncio import AsyncEngine

from resolvers.compiled import Statement, filed_events, filings
from server.observability import FILING_BATCHES, FILINGS_WAITING
from server.unit_of_work import database_unavailable

log = logging.getLogger(__name__)


class Unsure(Exception):
    """A filing's statement was sent, and the database went away before its outcome was known."""


def refused(error: BaseException) -> bool:
    """Whether a statement that failed surely wrote nothing: PostgreSQL refused it (a cancelled statement was
    rolled back), or the driver could not encode an argument (nothing was sent). Anything else after the
    statement went out (a lost connection, a timeout, a broken reply) may have been committed."""
    if isinstance(error, asyncpg.exceptions.QueryCanceledError):
        return True
    if not isinstance(error, Exception) or database_unavailable(error) \
            or isinstance(error, asyncpg.exceptions.OperatorInterventionError):
        return False
    return isinstance(error, asyncpg.PostgresError | asyncpg.exceptions._base.DataError)


@dataclass(slots=True)
class _Filing:
    statement: Statement
    answer: asyncio.Future[Any]


class FilingBatches:
    """The filings of one process, sent to ``engine`` in at most ``transactions`` transactions at a time, each of
    at most ``size`` filings (see the module's docstring)."""

    def __init__(self, engine: AsyncEngine, *, size: int, transactions: int = 1,
                 publish: Callable[[list[tuple[int, str]]], None] | None = None) -> None:
        self.engine = engine
        #: told the events (id, region code) of each transaction once it has committed, all at once
        self.publish = publish
        self.size = max(1, size)
        self.transactions = max(1, transactions)
        self._waiting: deque[_Filing] = deque()
        #: the sending tasks (kept referenced) and how many are sending: counted as they start and as they find
        #: nothing more to send, in the same step as that look (a task that has ended but whose done-callback has
        #: not run yet must not count, or a filing queued in between would wait with nobody to send it)
        self._senders: set[asyncio.Task[None]] = set()
        self._sending = 0
        #: the idempotency keys of the filings in flight, by account: a filing with one of them waits for that
        #: transaction to end (beside it, the two could deadlock: each would wait for the other's key or lock)
        self._keys: set[tuple[int, str]] = set()

    async def file(self, statement: Statement) -> Any:
        """The statement's row once its transaction has committed. Raises :class:`Unsure` when it may have
        committed and the database went away, anything else when it surely wrote nothing."""
        assert statement.writes and statement.filing is not None
        filing = _Filing(statement, asyncio.get_running_loop().create_future())
        self._waiting.append(filing)
        FILINGS_WAITING.inc()
        if self._sending < self.transactions:
            self._sending += 1
            sender = asyncio.create_task(self._send())
            self._senders.add(sender)
            sender.add_done_callback(self._senders.discard)
        return await filing.answer

    def _next(self) -> list[_Filing]:
        """The next transaction's filings, in the order they came: those answering with the same JSON as the first,
        none whose key is in flight in another transaction."""
        batch: list[_Filing] = []
        held: list[_Filing] = []
        while self._waiting and len(batch) < self.size:
            filing = self._waiting.popleft()
            key = _key(filing)
            if (key is not None and key in self._keys) \
                    or (batch and filing.statement.payload != batch[0].statement.payload):
                held.append(filing)
                continue
            FILINGS_WAITING.dec()
            if not filing.answer.done():  # (cancelled while it waited: not sent)
                batch.append(filing)
        self._waiting.extendleft(reversed(held))
        return batch

    async def _send(self) -> None:
        try:
            await self._send_all()
        finally:
            self._sending -= 1

    async def _send_all(self) -> None:
        while batch := self._next():
            keys = {key for filing in batch if (key := _key(filing)) is not None}
            self._keys |= keys
            try:
                await self._send_batch(batch)
            except BaseException as exc:  # (cancelled at shutdown): no filing is left without an answer
                for filing in batch:
                    _settle(filing, error=exc if isinstance(exc, Exception) else Unsure())
                if not isinstance(exc, Exception):  # (the ones not sent wrote nothing: the service answers them)
                    for filing in self._waiting:
                        _settle(filing, error=RuntimeError("filing not sent: the process is stopping"))
                    FILINGS_WAITING.dec(len(self._waiting))
                    self._waiting.clear()
                    raise
            finally:
                self._keys -= keys

    async def _send_batch(self, batch: list[_Filing]) -> None:
        """The filings as one statement, outside a transaction: its own, committed when it answers."""
        sql, params = filings([f.statement for f in batch])
        async with self.engine.connect() as connection:
            driver = (await connection.get_raw_connection()).driver_connection
            assert driver is not None
            try:
                rows = await driver.fetch(sql, *params)
            except asyncio.CancelledError:
                await asyncio.shield(connection.invalidate())
                raise
            except Exception as exc:
                if not refused(exc):
                    await connection.invalidate()
                    log.warning("filings: database unavailable after %d were sent (%s)", len(batch),
                                type(exc).__name__)
                    for filing in batch:
                        _settle(filing, error=Unsure())
                    return
                if len(batch) == 1:
                    _settle(batch[0], error=exc)
                    return
                log.warning("filings: PostgreSQL refused a statement of %d (%s); sending each alone", len(batch),
                            type(exc).__name__)
                rows = None
        if rows is None:
            for filing in batch:  # (one after the other: they would take turns at the lock anyway)
                await self._send_batch([filing])
            return
        if [row[0] for row in rows] != list(range(len(batch))):  # (committed, but answered wrongly: a bug)
            log.error("filings: %d rows answered %d filings", len(rows), len(batch))
            for filing in batch:
                _settle(filing, error=Unsure())
            return
        FILING_BATCHES.observe(len(batch))
        events = filed_events(rows)
        if events and self.publish is not None:
            self.publish(events)
        for filing, row in zip(batch, rows, strict=True):
            _settle(filing, row=row)


def _key(filing: _Filing) -> tuple[int, str] | None:
    """The account and idempotency key of a filing that names one."""
    assert filing.statement.filing is not None
    rows = filing.statement.filing.rows
    return None if rows.key is None else (rows.staff_id, rows.key)


def _settle(filing: _Filing, *, row: Any = None, error: BaseException | None = None) -> None:
    if filing.answer.done():  # the request went away: its filing stands, nobody is told
        return
    if error is not None:
        filing.answer.set_exception(error)
    else:
        filing.answer.set_result(row)
