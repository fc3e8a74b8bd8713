"""The ASGI application: routes listed in one place, a typed lifespan, pure ASGI middleware."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import json
import logging
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, cast

import orjson
from broadcaster import Broadcast
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route, WebSocketRoute
from starlette.types import Receive, Scope, Send
from starlette.websockets import WebSocket
from starlette.websockets import WebSocketDisconnect as StarletteDisconnect
from starlette.websockets import WebSocketDisconnected as StarletteDisconnected
from strawberry import Schema
from strawberry.asgi import GraphQL
from strawberry.exceptions import ConnectionRejectionError
from strawberry.http import GraphQLRequestData
from strawberry.http.exceptions import WebSocketDisconnected
from strawberry.subscriptions import GRAPHQL_TRANSPORT_WS_PROTOCOL
from strawberry.types.unset import UNSET, UnsetType

from console.routes import CONSOLE_HEADER, SESSION_COOKIE, console_routes
from domain.crypto import PersonalDataCipher
from domain.errors import DomainError, ServiceUnavailable
from domain.staff.tokens import TokenSigner
from schema import build_schema
from server import db
from server.auth import authenticate, credential_of, recall
from server.compiled_reads import CompiledReads, RawJSON
from server.context import Context, Services, abandon_unit
from server.export import export_endpoint
from server.middleware import PARSED_BODY, BodyLimit, JsonBody, RateLimit, RequestId, Sockets
from server.observability import WebSocketGauge, metrics_endpoint, request_id_var
from server.process import end_with_supervisor
from server.settings import Settings
from server.simulator import run as run_simulator
from server.unit_of_work import database_unavailable
from subscriptions.backends import make_broadcast
from subscriptions.hub import CHANNEL, EventHub
from subscriptions.websocket import SharingTransportWSHandler

log = logging.getLogger(__name__)



@dataclass(slots=True)
class Runtime:
    """What the lifespan opened: the engine, the broadcaster and the services built on them."""

    engine: AsyncEngine
    broadcast: Broadcast
    services: Services


#: the members of a GraphQL request the compiled path takes (anything else goes through the view)
_PLAIN_REQUEST = frozenset({"query", "variables", "operationName"})


#: the collector's thresholds (youngest, middle, full): see the lifespan
FULL_COLLECTION_THRESHOLDS = (700, 10, 100)


class RujukGraphQL(GraphQL[Context, None]):
    #: subscriptions that can share a stream resolve each event once for all their sockets
    graphql_transport_ws_handler_class = SharingTransportWSHandler

    def __init__(self, app_state: dict[str, Any], *, production: bool, max_subscriptions: int,
                 init_timeout: float, allowed_origins: tuple[str, ...], compiled_reads: bool = True,
                 filing_batch: int = 64, filing_transactions: int = 1) -> None:
        super().__init__(build_schema(production=production), graphql_ide=None if production else "graphiql",
                         allow_queries_via_get=False, subscription_protocols=(GRAPHQL_TRANSPORT_WS_PROTOCOL,),
                         multipart_uploads_enabled=False,
                         max_subscriptions_per_connection=max_subscriptions,
                         allowed_origins=allowed_origins,
                         connection_init_wait_timeout=timedelta(seconds=init_timeout))
        self._state = app_state
        self._compiled = CompiledReads(cast(Schema, self.schema), production=production,
                                        filing_batch=filing_batch,
                                        filing_transactions=filing_transactions) if compiled_reads else None

    async def execute_operation(self, request: Request, request_adapter: Any,
                                request_data: GraphQLRequestData | list[GraphQLRequestData], context: Context,
                                root_value: None, sub_response: Response) -> Any:
        """A query the compiler knows is answered by one SQL statement; everything else as usual."""
        if self._compiled is not None and request_adapter.method == "POST" and \
                isinstance(request_data, GraphQLRequestData):
            result = await self._compiled.execute(context, request_data.query, request_data.variables,
                                                  request_data.operation_name)
            if result is not None:
                return result
        await self.confirm(context)
        return await super().execute_operation(request=request, request_adapter=request_adapter,
                                               request_data=request_data, context=context, root_value=root_value,
                                               sub_response=sub_response)

    def encode_json(self, data: object) -> str:
        """Text (a WebSocket sends bytes as a binary frame, which clients do not parse as JSON); a compiled
        read's JSON is spliced in as PostgreSQL wrote it."""
        if isinstance(data, dict) and len(data) == 1 and isinstance(raw := data.get("data"), RawJSON):
            return '{"data":' + raw.text + "}"
        try:
            return orjson.dumps(data).decode()
        except TypeError:  # a value orjson does not take (e.g. an integer over 64 bits)
            return json.dumps(data, separators=(",", ":"))

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            compiled = scope["type"] == "http" and self._compiled is not None
            if compiled and await self._answer_compiled(scope, receive, send):
                return
            await super().__call__(scope, receive, send)
        finally:
            # an HTTP request refused before its operation ran (bad JSON, wrong method) still ends the unit of
            # work its authentication opened, so its connection goes back to the pool
            await abandon_unit()

    async def _answer_compiled(self, scope: Scope, receive: Receive, send: Send) -> bool:
        """A read the compiler answers, for an account this process remembers, straight from the body
        :class:`server.middleware.JsonBody` parsed: no view, no second parse. ``False`` (nothing sent, the body
        not consumed) for anything else, which the ordinary view then handles."""
        parsed = scope.get(PARSED_BODY)
        if not isinstance(parsed, dict) or "extensions" in parsed or not set(parsed) <= _PLAIN_REQUEST:
            return False
        query, variables, name = parsed.get("query"), parsed.get("variables"), parsed.get("operationName")
        if not isinstance(query, str) or not isinstance(variables, dict | None) or not isinstance(name, str | None):
            return False
        request = Request(scope)
        header = credential_of(request.headers)
        known = recall(self._runtime.services, header)  # None for no credential, API keys, unknown accounts
        if known is None:
            return False  # (the console's cookie, with its checks, goes the ordinary way too)
        ctx = self._new_context(request)
        ctx.actor, ctx.unconfirmed, ctx.credential = known.actor, known, header
        assert self._compiled is not None
        result = await self._compiled.execute(ctx, query, variables, name)
        if result is None:
            return False
        body: dict[str, Any] = {"data": result.data}
        if result.errors:  # (a filing whose outcome the database left unknown)
            body["errors"] = [error.formatted for error in result.errors]
        await Response(self.encode_json(body), media_type="application/json")(scope, receive, send)
        return True

    @property
    def _runtime(self) -> Runtime:
        runtime: Runtime = self._state["runtime"]
        return runtime

    def _new_context(self, request: Request | WebSocket) -> Context:
        ctx = Context(services=self._runtime.services, request=request,
                      request_id=request.scope.get("state", {}).get("request_id") or uuid.uuid4().hex[:16])
        request_id_var.set(ctx.request_id)
        return ctx

    async def get_context(self, request: Request | WebSocket, response: Response | WebSocket) -> Context:
        ctx = self._new_context(request)
        header = credential_of(request.headers)
        if not header and (cookie := request.cookies.get(SESSION_COOKIE)) and self._console_request(request):
            header = f"Bearer {cookie}"
        if not header:
            return ctx
        known = recall(ctx.services, header) if self._compiled is not None and isinstance(request, Request) else None
        if known is not None:
            # a compiled read confirms this account in its own statement; anything else confirms it first
            ctx.actor, ctx.unconfirmed, ctx.credential = known.actor, known, header
        else:
            await self._authenticate(ctx, header)
        return ctx

    async def confirm(self, ctx: Context) -> None:
        """Load the account of a request whose actor was only recalled, before anything else uses it."""
        if ctx.unconfirmed is not None and ctx.credential is not None:
            ctx.actor = ctx.unconfirmed = None
            await self._authenticate(ctx, ctx.credential)

    @staticmethod
    def _console_request(request: Request | WebSocket) -> bool:
        """The session cookie counts only for the console's own pages: a same-origin ``Origin`` and, over
        HTTP, the console's header (which a cross-site form or image cannot send without a CORS preflight)."""
        origin = request.headers.get("origin")
        host = request.headers.get("host", "")
        if origin not in {f"http://{host}", f"https://{host}"}:
            return False
        return isinstance(request, WebSocket) or request.headers.get(CONSOLE_HEADER) == "1"

    async def on_ws_connect(self, context: Context) -> UnsetType | None | dict[str, object]:
        """Authenticate a WebSocket in ``connection_init``: ``{"authorization": "Bearer <token>"}``. A socket
        without valid credentials is closed with 4403."""
        params = context.connection_params or {}
        credential = params.get("authorization") or params.get("Authorization")
        if isinstance(params.get("token"), str):
            credential = f"Bearer {params['token']}"
        if isinstance(credential, str) and credential:
            context.actor = None
            await self._authenticate(context, credential)
        if isinstance(context.auth_error, ServiceUnavailable):
            # not the client's fault: accept, and let its operations answer SERVICE_UNAVAILABLE (it retries)
            return cast(UnsetType, UNSET)
        if context.actor is None:
            raise ConnectionRejectionError({"reason": "authenticate with a valid token in connection_init"})
        return cast(UnsetType, UNSET)

    async def _authenticate(self, ctx: Context, header: str) -> None:
        try:
            if isinstance(ctx.request, WebSocket):
                ctx.actor = await authenticate(ctx.services, header)
            else:  # in the operation's own unit of work: no second connection, no second transaction
                async with ctx.db() as session:
                    ctx.actor = await authenticate(ctx.services, header, session=session)
        except DomainError as exc:
            ctx.auth_error = exc
        except Exception as exc:
            if not database_unavailable(exc):
                raise
            log.warning("authentication: database unavailable (%s)", type(exc).__name__)
            ctx.auth_error = ServiceUnavailable("the database is unavailable; retry shortly")


class _ClientGone(logging.Filter):
    """A client that disconnects while a subscription result is being sent is routine, not an incident."""

    def filter(self, record: logging.LogRecord) -> bool:
        error = record.exc_info[1] if record.exc_info else None
        return not isinstance(error, WebSocketDisconnected | StarletteDisconnect | StarletteDisconnected)


_client_gone = _ClientGone()


def create_app(settings: Settings, *, engine: AsyncEngine | None = None,
               sessionmaker: async_sessionmaker[AsyncSession] | None = None) -> Starlette:
    """The app. Tests may hand in their own engine and sessionmaker (e.g. bound to one connection)."""
    state: dict[str, Any] = {}
    signer = TokenSigner(settings.secret_key, access_ttl=settings.token_ttl_seconds,
                         refresh_ttl=settings.refresh_ttl_seconds)
    task_log = logging.getLogger("strawberry.ws.task")
    if _client_gone not in task_log.filters:
        task_log.addFilter(_client_gone)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        assert settings.database_url is not None, "the CLI starts the embedded database before the app"
        end_with_supervisor()
        own_engine = engine is None
        eng = engine or db.make_engine(settings.database_url, pool_size=settings.db_pool_size)
        broadcast = make_broadcast(settings.broadcast_url)
        await broadcast.connect()
        hub_ref: list[EventHub] = []

        async def publish(events: list[tuple[int, str]]) -> None:
            """After a commit: wake this process's hub at once, and the other processes through the
            broadcast (ids only; the event log is the record)."""
            for hub in hub_ref:
                hub.wake(max((e[0] for e in events), default=0))
            await broadcast.publish(CHANNEL, json.dumps({"ids": [e[0] for e in events]}))

        async def notify(message: str) -> None:
            await broadcast.publish(CHANNEL, message)

        services = Services(settings=settings, sessionmaker=sessionmaker or db.make_sessionmaker(eng),
                            cipher=PersonalDataCipher(settings.pii_key), signer=signer, publish=publish,
                            notify=notify)
        hub = EventHub(services.sessionmaker, broadcast, poll_interval=settings.event_poll_seconds,
                       queue_size=settings.subscriber_queue_size)
        await hub.start()
        hub_ref.append(hub)
        services.hub = hub
        state["runtime"] = Runtime(engine=eng, broadcast=broadcast, services=services)
        simulator = asyncio.create_task(run_simulator(services)) if settings.simulator else None
        # what start-up made (modules, the schema, the engine) lives as long as the process: out of the
        # collector's sight, so its full passes (pauses of several ms under load) only walk what requests make
        gc.freeze()
        # a full pass also walks every open WebSocket (~65 objects each): ~0.25 s with 5,000 consoles, during
        # which no socket is served. Requests' objects die young, by reference count, so full passes have little
        # to find: one every 100 middle passes instead of every 10 (the 25% growth rule still applies)
        gc.set_threshold(*FULL_COLLECTION_THRESHOLDS)
        try:
            yield
        finally:
            if simulator is not None:
                simulator.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await simulator
            await hub.stop()
            await broadcast.disconnect()
            if own_engine:
                await eng.dispose()

    graphql = RujukGraphQL(state, production=settings.production,
                           max_subscriptions=settings.max_subscriptions_per_socket,
                           init_timeout=settings.ws_init_timeout_seconds, allowed_origins=settings.cors_origins,
                           compiled_reads=settings.compiled_reads,
                           filing_batch=settings.filing_batch_size,
                           filing_transactions=settings.filing_transactions)

    async def healthz(request: Request) -> Response:
        return PlainTextResponse("ok")

    async def readyz(request: Request) -> Response:
        runtime: Runtime | None = state.get("runtime")
        if runtime is None:
            return JSONResponse({"ready": False, "database": False}, status_code=503)
        backend = getattr(runtime.broadcast, "_backend", None)
        broadcast = bool(getattr(backend, "connected", True))
        try:
            migrated = await asyncio.wait_for(db.at_head(runtime.engine), timeout=5)
        except Exception:  # any failure to reach the database means not ready
            log.warning("readiness check: database unreachable")
            return JSONResponse({"ready": False, "database": False, "broadcast": broadcast}, status_code=503)
        # a broadcaster outage only delays live updates (each process still polls the event log): not gating
        ready = migrated
        return JSONResponse({"ready": ready, "database": True, "migrations": migrated, "broadcast": broadcast},
                            status_code=200 if ready else 503)

    def services() -> Services:
        runtime: Runtime = state["runtime"]
        return runtime.services

    routes = [
        *console_routes(services),
        Route("/export/{kind}.ndjson", export_endpoint(services), methods=["GET"]),
        Route("/healthz", healthz),
        Route("/metrics", metrics_endpoint(
            lambda: state["runtime"].engine if "runtime" in state else None,
            lambda: state["runtime"].services.hub.subscribers if "runtime" in state and
            state["runtime"].services.hub else 0)),
        Route("/readyz", readyz),
        Route("/graphql", graphql, methods=["GET", "POST"]),
        WebSocketRoute("/graphql", graphql),
    ]
    middleware = [
        Middleware(WebSocketGauge),
        Middleware(RequestId),
        Middleware(RateLimit, signer=signer, rate=settings.rate_limit, burst=settings.rate_burst,
                   anonymous_rate=settings.anonymous_rate_limit, anonymous_burst=settings.anonymous_rate_burst),
        Middleware(Sockets, sockets=graphql),
        Middleware(BodyLimit, limit=settings.max_body_bytes),
        Middleware(JsonBody),
    ]
    if settings.cors_origins:
        middleware.append(Middleware(CORSMiddleware, allow_origins=list(settings.cors_origins),
                                     allow_methods=["GET", "POST"],
                                     allow_headers=["authorization", "content-type", "x-api-key", "x-request-id"],
                                     expose_headers=["x-request-id", "x-rujuk-cursor", "retry-after"],
                                     max_age=600))
    return Starlette(routes=routes, middleware=middleware, lifespan=lifespan)
