"""Running compiled reads over HTTP (see :mod:`resolvers.compiled`): the parsed, validated document is kept per
query text; each request coerces its variables, checks the same limits the schema's extensions check, builds
the statement for its actor and sends PostgreSQL's JSON as the response body without decoding it.

Whatever this path cannot answer exactly as the resolvers would (an invalid or over-budget operation, an
unauthenticated request, a field it does not compile, a domain error for the given arguments, a database
failure) it hands back untouched, and the ordinary execution answers, with its errors.

The one compiled mutation, a plain ``fileComplaint`` (:func:`resolvers.compiled.compile_filing`), is one
statement that writes everything or nothing: when it wrote nothing (a check failed, the key was used before,
the statement failed) the ordinary execution answers, as for a read. Filings that arrive together commit
together (:mod:`server.filing_batches`). Only when the database went away after
the statement was sent is the outcome unknown; then the answer is ``SERVICE_UNAVAILABLE``, as when a commit
fails, and the client retries with the same idempotency key."""

from __future__ import annotations

import contextlib
import logging
import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

import asyncpg
import orjson
from graphql import (
    DocumentNode,
    FragmentDefinitionNode,
    GraphQLError,
    OperationDefinitionNode,
    OperationType,
    parse,
    specified_rules,
    validate,
)
from graphql.execution.values import VariableValues, get_variable_values
from sqlalchemy.ext.asyncio import AsyncEngine
from strawberry import Schema
from strawberry.types import ExecutionResult

from domain.errors import DomainError
from resolvers.compiled import (
    Declined,
    NotCompilable,
    Request,
    Statement,
    after_other_cursors,
    compile_,
    compile_filing,
    filed_events,
    filings,
)
from schema.limits import MAX_COST, MAX_TOKENS, document_has_nul, has_nul, operation_cost, validation_rules
from server.auth import forget
from server.context import Context, publish_committed
from server.filing_batches import FilingBatches, Unsure
from server.observability import COMPILED_FILINGS, COMPILED_READS, LATENCY, OPERATIONS
from server.unit_of_work import database_unavailable

log = logging.getLogger(__name__)


#: set in a request's scope when its compiled statement failed to run: the resolvers answer it, once
FAILED = "rujuk.compiled_read_failed"


class RawJSON:
    """A response member already encoded as JSON text."""

    __slots__ = ("text",)

    def __init__(self, text: str) -> None:
        self.text = text


@dataclass(frozen=True, slots=True)
class Prepared:
    document: DocumentNode
    operation: OperationDefinitionNode
    fragments: dict[str, FragmentDefinitionNode]


class CompiledReads:
    def __init__(self, schema: Schema, *, production: bool, cache_size: int = 256, filing_batch: int = 64,
                 filing_transactions: int = 1) -> None:
        self.schema = schema
        #: filings sent in one transaction at most (group commit; 1: each alone)
        self.filing_batch = filing_batch
        #: such transactions in flight at once
        self.filing_transactions = filing_transactions
        self._filings: FilingBatches | None = None
        self.rules = [*specified_rules, *validation_rules(production=production)]
        #: parsed and validated documents (``None``: not one this path answers), by query text
        self._prepared = _Bounded(cache_size)
        #: query texts this path could not compile, so they are not tried again
        self._declined = _Bounded(cache_size)
        #: the JSON layer of documents already compiled, per visibility and scope
        self._nodes: _Bounded = _Bounded(cache_size * 4)
        #: whole statements, by query, variables and account (a page's cursor variables only by whether given)
        self._statements: _Bounded = _Bounded(cache_size * 4)
        #: the variables that give pages' cursors, by query text and operation name, once one was compiled
        self._cursor_variables = _Bounded(cache_size)

    def _prepare(self, query: str, operation_name: str | None) -> Prepared | None:
        key = (query, operation_name)
        if key not in self._prepared:
            self._prepared[key] = self._parse(query, operation_name)
        prepared: Prepared | None = self._prepared.get(key)
        return prepared

    def _parse(self, query: str, operation_name: str | None) -> Prepared | None:
        try:
            document = parse(query, max_tokens=MAX_TOKENS)
        except GraphQLError:
            return None
        if document_has_nul(document) or validate(self.schema._schema, document, self.rules):
            return None
        operations = [d for d in document.definitions if isinstance(d, OperationDefinitionNode)]
        if operation_name is not None:
            operations = [o for o in operations if o.name is not None and o.name.value == operation_name]
        if len(operations) != 1 or operations[0].operation not in {OperationType.QUERY, OperationType.MUTATION}:
            return None
        fragments = {d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)}
        return Prepared(document=document, operation=operations[0], fragments=fragments)

    async def execute(self, ctx: Context, query: Any, variables: Any, operation_name: Any) -> ExecutionResult | None:
        """The result, or ``None`` for the ordinary execution to answer."""
        if ctx.actor is None or not isinstance(query, str) or not isinstance(operation_name, str | None):
            return None
        if ctx.request is not None and ctx.request.scope.get(FAILED):
            return None
        key = (query, operation_name, ctx.actor.sees_personal_data)
        if key in self._declined:
            return None
        prepared = self._prepare(query, operation_name)
        if prepared is None:
            return None
        values = variables if isinstance(variables, dict) else {}
        if variables is not None and not isinstance(variables, dict):
            return None
        known = ctx.unconfirmed
        confirm = None if known is None else (known.actor.id, known.role, known.username, known.region_code,
                                              known.extra_region_codes)
        actor = ctx.actor
        statement_key: Any = None
        # the same read again (a console refreshing its list, a board, a partner paging on): the statement as built
        # before (a write is built for each request; values orjson cannot write are not keyed). A page's cursor
        # counts only as given or not: the statement takes another cursor's values as its parameters.
        cursors: tuple[str, ...] = self._cursor_variables.get((query, operation_name), ())
        if prepared.operation.operation is OperationType.QUERY:
            with contextlib.suppress(TypeError):
                statement_key = self._statement_key(query, operation_name, values, cursors, actor, confirm)
        statement = self._statements.get(statement_key) if statement_key is not None else None
        if statement is not None and statement.cursors:
            try:
                statement = after_other_cursors(statement, values)
            except DomainError:  # not a cursor of this list: the resolvers answer with the typed error
                return None
        if statement is None:
            built = self._build(ctx, prepared, key, values, confirm)
            if built is None:
                return None
            statement = built
            if statement_key is not None:
                if built.cursors and not cursors:  # learnt: key this and later requests by their cursors' presence
                    cursors = tuple(sorted(c.variable for c in built.cursors))
                    self._cursor_variables[(query, operation_name)] = cursors
                    with contextlib.suppress(TypeError):
                        statement_key = self._statement_key(query, operation_name, values, cursors, actor, confirm)
                # kept only when its cursors are exactly the keyed variables given (else their values are its own)
                if {c.variable for c in built.cursors} == {name for name in cursors if values.get(name) is not None}:
                    self._statements[statement_key] = statement
        return await self._answer(ctx, prepared, statement, known)

    @staticmethod
    def _statement_key(query: str, operation_name: str | None, values: dict[str, Any], cursors: tuple[str, ...],
                       actor: Any, confirm: Any) -> tuple[Any, ...]:
        keyed = {**values, **{name: values.get(name) is not None for name in cursors}} if cursors else values
        return (query, operation_name, orjson.dumps(keyed, option=orjson.OPT_SORT_KEYS), cursors, actor.id,
                actor.role, actor.regions, actor.programs, actor.sees_personal_data, actor.key_id, confirm)

    def _build(self, ctx: Context, prepared: Prepared, key: tuple[str, str | None, bool], values: dict[str, Any],
               confirm: tuple[int, str, str, str | None, tuple[str, ...]] | None) -> Statement | None:
        if has_nul(values):
            return None
        assert ctx.actor is not None
        query, operation_name = key[0], key[1]
        settings = ctx.settings
        spent = operation_cost(prepared.document, values, settings.default_page_size, settings.max_page_size)
        if spent is None or spent > MAX_COST:
            return None
        coerced = get_variable_values(self.schema._schema, prepared.operation.variable_definitions or (), values)
        if not isinstance(coerced, VariableValues):
            return None
        request = Request(schema=self.schema._schema, strawberry_schema=self.schema, fragments=prepared.fragments,
                          variables=coerced, actor=ctx.actor, cipher=ctx.cipher,
                          default_page=settings.default_page_size, max_page=settings.max_page_size,
                          cache=self._nodes, query_key=(query, operation_name), confirm=confirm)
        try:
            if prepared.operation.operation is OperationType.MUTATION:
                statement = compile_filing(request, prepared.document, prepared.operation, origin=ctx.origin)
            else:
                statement = compile_(request, prepared.document, prepared.operation)
        except NotCompilable as exc:
            log.debug("not compiled: %s", exc)
            COMPILED_READS.labels(outcome="declined").inc()
            self._declined[key] = None
            return None
        except (DomainError, Declined):  # e.g. a bad cursor or filter: the resolvers raise it again, as a typed error
            return None
        return statement

    async def _answer(self, ctx: Context, prepared: Prepared, statement: Statement,
                      known: Any) -> ExecutionResult | None:
        if statement.writes:
            return await self._file(ctx, prepared, statement, known)
        started = time.perf_counter()
        try:
            row = await self._run(ctx, statement)
        except Exception as exc:  # the ordinary execution runs it again and reports what fails
            log.warning("compiled read failed (%s); answering through the resolvers", type(exc).__name__)
            if ctx.request is not None:  # not again for this request (a timeout is not paid twice)
                ctx.request.scope[FAILED] = True
            return None
        if known is not None:
            if not row[1]:  # the account changed or was deactivated: the answer is void, authenticate anew
                forget(known.actor.id)
                return None
            ctx.unconfirmed = None
        name = (prepared.operation.name.value if prepared.operation.name else "anonymous")[:60]
        OPERATIONS.labels(operation=name, type="query", outcome="ok").inc()
        COMPILED_READS.labels(outcome="compiled").inc()
        LATENCY.labels(operation=name).observe(time.perf_counter() - started)
        return ExecutionResult(data=RawJSON(row[0]), errors=None)  # type: ignore[arg-type]

    async def _file(self, ctx: Context, prepared: Prepared, statement: Statement,
                    known: Any) -> ExecutionResult | None:
        """A filing: its payload, or ``None`` when it wrote nothing (the ordinary execution answers)."""
        started = time.perf_counter()
        try:
            row = await self._write(ctx, statement)
        except Unsure:
            log.warning("filing: database unavailable after the statement was sent (request %s)", ctx.request_id)
            return ExecutionResult(data=None, errors=[GraphQLError(
                "The database became unavailable while saving; the change may not have been saved. Retry (intake: "
                "with the same idempotency key).", extensions={"code": "SERVICE_UNAVAILABLE",
                                                              "requestId": ctx.request_id})])
        except Exception as exc:  # nothing was written: the ordinary execution files it, or reports what fails
            log.warning("compiled filing failed (%s); answering through the resolvers", type(exc).__name__)
            if ctx.request is not None:
                ctx.request.scope[FAILED] = True
            return None
        _, confirmed, data, event_id, region_code = row
        if data is None:  # not in the actor's area, a key used before, ...: the service answers it, once
            if ctx.request is not None:
                ctx.request.scope[FAILED] = True
            if known is not None and not confirmed:
                forget(known.actor.id)
            return None
        ctx.unconfirmed = None
        name = (prepared.operation.name.value if prepared.operation.name else "anonymous")[:60]
        OPERATIONS.labels(operation=name, type="mutation", outcome="ok").inc()
        COMPILED_FILINGS.inc()
        LATENCY.labels(operation=name).observe(time.perf_counter() - started)
        return ExecutionResult(data=RawJSON(data), errors=None)  # type: ignore[arg-type]

    async def _write(self, ctx: Context, statement: Statement) -> Any:
        """Run a filing's statement and commit it: in the request's unit of work when authentication opened one,
        else with the other filings of this process (:mod:`server.filing_batches`); either publishes the event
        once committed. Raises :class:`Unsure` when it may have committed, anything else when it surely did
        not."""
        bind = ctx.services.sessionmaker.kw.get("bind")
        if ctx.unit_open() or not isinstance(bind, AsyncEngine):
            row = await CompiledReads._in_unit(ctx, statement)
            if events := filed_events([row]):
                publish_committed(ctx.services, events)
            return row
        if self._filings is None or self._filings.engine is not bind:
            services = ctx.services
            self._filings = FilingBatches(bind, size=self.filing_batch, transactions=self.filing_transactions,
                                          publish=lambda events: publish_committed(services, events))
        return await self._filings.file(statement)

    @staticmethod
    async def _in_unit(ctx: Context, statement: Statement) -> Any:
        """The statement's row, run in the request's unit of work, which then commits (or, if the statement
        failed, rolls back). A commit that lost the database raises :class:`Unsure`: it may have landed."""
        try:
            async with ctx.db() as session:
                connection = await session.connection()
                sql, params = filings([statement]) if statement.writes else (statement.sql, statement.params)
                row = (await connection.exec_driver_sql(sql, tuple(params))).one()
        except BaseException:
            await ctx.finish(success=False)
            raise
        try:
            await ctx.finish(success=True)
        except Exception as exc:
            if database_unavailable(exc):
                raise Unsure from exc
            raise
        return row

    @staticmethod
    async def _run(ctx: Context, statement: Statement) -> Any:
        """One round trip: in the request's own unit of work when authentication opened one (it commits with
        the statement's audit rows), else on a connection of its own in autocommit (the statement is its own
        transaction, audit rows included)."""
        bind = ctx.services.sessionmaker.kw.get("bind")
        if ctx.unit_open() or not isinstance(bind, AsyncEngine):
            return await CompiledReads._in_unit(ctx, statement)
        async with bind.connect() as connection:
            # straight to the driver: outside a transaction asyncpg's statement is its own (autocommit), and
            # the pool's rollback on return has nothing to do
            driver = (await connection.get_raw_connection()).driver_connection
            assert driver is not None
            try:
                row = await driver.fetchrow(statement.sql, *statement.params)
            except (OSError, asyncpg.InterfaceError, asyncpg.PostgresConnectionError,
                    asyncpg.exceptions.OperatorInterventionError):  # admin shutdown, terminated backend
                await connection.invalidate()  # a lost connection does not go back to the pool
                raise
            if row is None:
                raise LookupError("a compiled read returned no row")
            return row


class _Bounded(OrderedDict[tuple[Any, ...], Any]):
    """A dict that forgets its least recently used entries beyond ``size``."""

    def __init__(self, size: int) -> None:
        super().__init__()
        self.size = size

    def get(self, key: tuple[Any, ...], default: Any = None) -> Any:
        if key not in self:
            return default
        self.move_to_end(key)
        return self[key]

    def __setitem__(self, key: tuple[Any, ...], value: Any) -> None:
        super().__setitem__(key, value)
        if len(self) > self.size:
            self.popitem(last=False)
