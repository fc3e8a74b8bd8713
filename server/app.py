"""The ASGI application: routes listed in one place, a typed lifespan, pure ASGI middleware."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

from broadcaster import Broadcast
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route, WebSocketRoute
from starlette.websockets import WebSocket
from strawberry.asgi import GraphQL
from strawberry.subscriptions import GRAPHQL_TRANSPORT_WS_PROTOCOL

from domain.crypto import PersonalDataCipher
from domain.errors import DomainError
from domain.staff.service import active_staff, actor_of
from domain.staff.tokens import TokenSigner
from schema import build_schema
from server import db
from server.context import Context, Services
from server.settings import Settings
from server.simulator import run as run_simulator

log = logging.getLogger(__name__)

EVENTS_CHANNEL = "rujuk.case_events"


@dataclass(slots=True)
class Runtime:
    """What the lifespan opened: the engine, the broadcaster and the services built on them."""

    engine: AsyncEngine
    broadcast: Broadcast
    services: Services


class RujukGraphQL(GraphQL[Context, None]):
    def __init__(self, app_state: dict[str, Any], *, production: bool) -> None:
        super().__init__(build_schema(production=production), graphql_ide=None if production else "graphiql",
                         allow_queries_via_get=False, subscription_protocols=(GRAPHQL_TRANSPORT_WS_PROTOCOL,),
                         multipart_uploads_enabled=False)
        self._state = app_state

    async def get_context(self, request: Request | WebSocket, response: Response | WebSocket) -> Context:
        runtime: Runtime = self._state["runtime"]
        ctx = Context(services=runtime.services, request=request,
                      request_id=request.headers.get("x-request-id", "")[:64] or uuid.uuid4().hex[:16])
        header = request.headers.get("authorization", "")
        if header:
            scheme, _, token = header.partition(" ")
            try:
                if scheme.lower() != "bearer" or not token:
                    raise DomainError("use 'Authorization: Bearer <token>'", code="INVALID_TOKEN")
                claims = runtime.services.signer.verify(token.strip(), "access")
                async with ctx.db() as session:
                    ctx.actor = actor_of(await active_staff(session, staff_id=claims.staff_id))
            except DomainError as exc:
                exc.code = "UNAUTHENTICATED" if exc.code not in {"TOKEN_EXPIRED"} else exc.code
                ctx.auth_error = exc
        return ctx


async def _publisher(broadcast: Broadcast, events: list[tuple[int, str]]) -> None:
    await broadcast.publish(EVENTS_CHANNEL, json.dumps({"ids": [e[0] for e in events],
                                                       "regions": sorted({e[1] for e in events})}))


def create_app(settings: Settings, *, engine: AsyncEngine | None = None,
               sessionmaker: async_sessionmaker[AsyncSession] | None = None) -> Starlette:
    """The app. Tests may hand in their own engine and sessionmaker (e.g. bound to one connection)."""
    state: dict[str, Any] = {}

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        assert settings.database_url is not None, "the CLI starts the embedded database before the app"
        own_engine = engine is None
        eng = engine or db.make_engine(settings.database_url, pool_size=settings.db_pool_size)
        broadcast = Broadcast(settings.broadcast_url)
        await broadcast.connect()

        async def publish(events: list[tuple[int, str]]) -> None:
            await _publisher(broadcast, events)

        services = Services(settings=settings, sessionmaker=sessionmaker or db.make_sessionmaker(eng),
                            cipher=PersonalDataCipher(settings.pii_key),
                            signer=TokenSigner(settings.secret_key, access_ttl=settings.token_ttl_seconds,
                                               refresh_ttl=settings.refresh_ttl_seconds),
                            publish=publish)
        state["runtime"] = Runtime(engine=eng, broadcast=broadcast, services=services)
        simulator = asyncio.create_task(run_simulator(services)) if settings.simulator else None
        try:
            yield
        finally:
            if simulator is not None:
                simulator.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await simulator
            await broadcast.disconnect()
            if own_engine:
                await eng.dispose()

    graphql = RujukGraphQL(state, production=settings.production)

    async def healthz(request: Request) -> Response:
        return PlainTextResponse("ok")

    async def readyz(request: Request) -> Response:
        runtime: Runtime | None = state.get("runtime")
        if runtime is None:
            return JSONResponse({"ready": False, "database": False}, status_code=503)
        try:
            migrated = await db.at_head(runtime.engine)
        except Exception:  # any failure to reach the database means not ready
            log.warning("readiness check: database unreachable")
            return JSONResponse({"ready": False, "database": False}, status_code=503)
        return JSONResponse({"ready": migrated, "database": True, "migrations": migrated},
                            status_code=200 if migrated else 503)

    routes = [
        Route("/healthz", healthz),
        Route("/readyz", readyz),
        Route("/graphql", graphql, methods=["GET", "POST"]),
        WebSocketRoute("/graphql", graphql),
    ]
    middleware = []
    if settings.cors_origins:
        middleware.append(Middleware(CORSMiddleware, allow_origins=list(settings.cors_origins),
                                     allow_methods=["GET", "POST"], allow_headers=["authorization", "content-type"],
                                     max_age=600))
    return Starlette(routes=routes, middleware=middleware, lifespan=lifespan)
