"""Schema extensions at the operation boundary: the unit of work and the error policy."""

from __future__ import annotations

import contextlib
import logging
import re
from collections.abc import AsyncIterator, Iterator

import asyncpg
from graphql import FieldNode, GraphQLError, OperationDefinitionNode
from sqlalchemy.exc import DBAPIError, PendingRollbackError
from starlette.websockets import WebSocket
from strawberry.extensions import SchemaExtension
from strawberry.types import StreamExecutionResult
from strawberry.types.graphql import OperationType

from domain.errors import DomainError, ServiceUnavailable
from server.context import Context

log = logging.getLogger("rujuk.errors")


def database_unavailable(error: BaseException) -> bool:
    """A lost or refused database connection (as opposed to a bug): a retry will do."""
    if isinstance(error, ServiceUnavailable | PendingRollbackError):
        return True
    if isinstance(error, OSError | TimeoutError | asyncpg.exceptions.ConnectionDoesNotExistError |
                  asyncpg.exceptions.CannotConnectNowError | asyncpg.exceptions.AdminShutdownError):
        return True
    if isinstance(error, DBAPIError) and (error.connection_invalidated or (
            error.orig is not None and database_unavailable(error.orig))):
        return True
    cause = error.__cause__
    return cause is not None and cause is not error and database_unavailable(cause)


class UnitOfWork(SchemaExtension):
    """One transaction per operation: commit once when it succeeded, roll back otherwise, then publish
    the events it wrote. Subscriptions open their own short units of work per event."""

    async def on_operation(self) -> AsyncIterator[None]:
        ctx = self.execution_context.context
        if isinstance(ctx, Context):
            ctx.unit  # noqa: B018 - open the unit in the operation's own task, before fields fan out
        success = False
        try:
            yield
            result = self.execution_context.result
            success = result is not None and not getattr(result, "errors", None)
        finally:
            if isinstance(ctx, Context):
                await self._finish(ctx, success)

    async def _finish(self, ctx: Context, success: bool) -> None:
        """Commit (or roll back). A failure here comes after the error policy ran, so it is answered here: the
        client learns the change may not have been saved and can retry with the same idempotency key."""
        try:
            await ctx.finish(success=success, change=self._mutation_fields())
        except Exception as exc:
            if database_unavailable(exc):
                log.warning("commit failed, database unavailable (request %s)", ctx.request_id)
                code, message = "SERVICE_UNAVAILABLE", ("The database became unavailable while saving; the change "
                                                       "may not have been saved. Retry (intake: with the same "
                                                       "idempotency key).")
            else:
                log.error("commit failed (request %s)", ctx.request_id, exc_info=exc)
                code, message = "INTERNAL_SERVER_ERROR", f"Unexpected error; reference {ctx.request_id}."
            raise GraphQLError(message, extensions={"code": code, "requestId": ctx.request_id}) from None

    def _mutation_fields(self) -> str | None:
        """For a mutation, the root fields it ran (recorded with the events it wrote, in the audit log)."""
        document = self.execution_context.graphql_document
        if document is None:
            return None
        try:
            if self.execution_context.operation_type is not OperationType.MUTATION:
                return None
        except RuntimeError:  # no single operation to run (the request already failed)
            return None
        fields = [selection.name.value for definition in document.definitions
                  if isinstance(definition, OperationDefinitionNode)
                  for selection in definition.selection_set.selections
                  if isinstance(selection, FieldNode) and selection.name.value != "__typename"]
        return ",".join(fields)[:200] or None


_SUGGESTION = re.compile(r"\s*Did you mean .*$", re.S)


class SubscriptionsOverWebSocket(SchemaExtension):
    """Subscriptions stream over graphql-transport-ws; over HTTP they are refused as a client error."""

    def on_execute(self) -> Iterator[None]:
        context = self.execution_context
        ctx = context.context
        if context.graphql_document is not None and isinstance(ctx, Context) and \
                not isinstance(ctx.request, WebSocket):
            with contextlib.suppress(RuntimeError):
                if context.operation_type is OperationType.SUBSCRIPTION:
                    raise GraphQLError("subscriptions run over a WebSocket (graphql-transport-ws), not HTTP",
                                       extensions={"code": "BAD_REQUEST"})
        yield


class ErrorPolicy(SchemaExtension):
    """Expected failures keep their message and get a stable ``extensions.code``; anything unexpected is
    replaced by a generic message with the request id, and logged (never its variables: they may hold
    personal data)."""

    def __init__(self, *, production: bool = False) -> None:
        self.production = production

    def on_operation(self) -> Iterator[None]:
        yield
        self._apply(self.execution_context.result)

    def on_stream_result(self, result: StreamExecutionResult) -> Iterator[None]:
        """Each result of a subscription gets the same treatment, before it is sent."""
        self._apply(result)
        yield

    def _apply(self, result: object) -> None:
        """Idempotent: an error already rewritten has no original error left and keeps its code."""
        errors = getattr(result, "errors", None)
        if not errors:
            return
        ctx = self.execution_context.context
        request_id = ctx.request_id if isinstance(ctx, Context) else ""
        setattr(result, "errors", [self._policy(error, request_id) for error in errors])  # noqa: B010

    def _policy(self, error: GraphQLError, request_id: str) -> GraphQLError:
        original = error.original_error
        if original is None or isinstance(original, GraphQLError):
            extensions = dict(error.extensions or {})
            extensions.setdefault("code", "GRAPHQL_VALIDATION_FAILED" if error.path is None else "BAD_REQUEST")
            # in production the schema is not for guessing: no "Did you mean ...?" for any name
            message = _SUGGESTION.sub("", error.message) if self.production else error.message
            return GraphQLError(message, nodes=error.nodes, source=error.source, positions=error.positions,
                                path=error.path, extensions=extensions)
        if isinstance(original, DomainError):
            extensions = {"code": original.code}
            if original.field:
                extensions["field"] = original.field
            return GraphQLError(original.message, nodes=error.nodes, source=error.source,
                                positions=error.positions, path=error.path, extensions=extensions)
        if database_unavailable(original):
            log.warning("database unavailable (request %s): %s", request_id, type(original).__name__)
            return GraphQLError("The database is unavailable at the moment; nothing was changed. Retry shortly.",
                                nodes=error.nodes, source=error.source, positions=error.positions, path=error.path,
                                extensions={"code": "SERVICE_UNAVAILABLE", "requestId": request_id})
        log.error("unexpected error in operation (request %s) at %s", request_id, error.path,
                  exc_info=(type(original), original, original.__traceback__))
        return GraphQLError(f"Unexpected error; reference {request_id or 'unknown'}.", nodes=error.nodes,
                            source=error.source, positions=error.positions, path=error.path,
                            extensions={"code": "INTERNAL_SERVER_ERROR", "requestId": request_id})
