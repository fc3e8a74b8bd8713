"""What an operator watches: Prometheus metrics and structured JSON logs with request ids (never personal data:
no variables, no bodies, no NIK, only operation names, codes and ids)."""

from __future__ import annotations

import json
import logging
import logging.config
import time
from collections.abc import Iterator
from contextvars import ContextVar
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from strawberry.extensions import SchemaExtension

request_id_var: ContextVar[str] = ContextVar("rujuk_request_id", default="")

REGISTRY = CollectorRegistry(auto_describe=True)
OPERATIONS = Counter("rujuk_graphql_operations_total", "GraphQL operations by name, type and outcome",
                     ["operation", "type", "outcome"], registry=REGISTRY)
LATENCY = Histogram("rujuk_graphql_operation_seconds", "GraphQL operation latency by name", ["operation"],
                    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10), registry=REGISTRY)
COMPILED_READS = Counter("rujuk_compiled_reads_total", "Queries answered by one compiled SQL statement, and queries "
                         "the compiler handed to the resolvers", ["outcome"], registry=REGISTRY)
COMPILED_FILINGS = Counter("rujuk_compiled_filings_total", "fileComplaint operations filed by one compiled SQL "
                           "statement", registry=REGISTRY)
FILING_BATCHES = Histogram("rujuk_filing_transaction_size", "One-statement filings sent per transaction (group commit; "
                           "those that wrote nothing included)", buckets=(1, 2, 4, 8, 16, 32, 64), registry=REGISTRY)
FILINGS_WAITING = Gauge("rujuk_filings_waiting", "One-statement filings waiting for the transaction in flight to "
                        "commit, to go together in the next", registry=REGISTRY)
ERRORS = Counter("rujuk_errors_total", "Errors by code (top-level GraphQL errors and mutation payload errors)",
                 ["code", "where"], registry=REGISTRY)
WEBSOCKETS = Gauge("rujuk_websockets_open", "Open WebSocket connections", registry=REGISTRY)
SUBSCRIPTIONS = Gauge("rujuk_subscriptions_active", "Active subscriptions in this process", registry=REGISTRY)
EVENT_LAG = Gauge("rujuk_event_lag_seconds", "Age of the newest case event when this process's hub read it",
                  registry=REGISTRY)
EVENTS_READ = Counter("rujuk_events_read_total", "Case events read by this process's hub", registry=REGISTRY)
POOL = Gauge("rujuk_db_pool_connections", "Database pool connections by state", ["state"], registry=REGISTRY)


def count_payload_error(code: str) -> None:
    ERRORS.labels(code=code, where="payload").inc()


class OperationMetrics(SchemaExtension):
    """Counts and times every operation by name, and its top-level errors by code."""

    def on_operation(self) -> Iterator[None]:
        started = time.perf_counter()
        yield
        context = self.execution_context
        name = (context.operation_name or "anonymous")[:60]
        try:
            kind = context.operation_type.value if context.graphql_document is not None else "invalid"
        except RuntimeError:
            kind = "invalid"
        result = context.result
        errors = getattr(result, "errors", None) or []
        for error in errors:
            ERRORS.labels(code=str((error.extensions or {}).get("code", "UNKNOWN")), where="graphql").inc()
        OPERATIONS.labels(operation=name, type=kind, outcome="error" if errors else "ok").inc()
        LATENCY.labels(operation=name).observe(time.perf_counter() - started)


class WebSocketGauge:
    """Counts open WebSockets (pure ASGI, so it sees them)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "websocket":
            await self.app(scope, receive, send)
            return
        opened = False

        async def tracked(message: Message) -> None:
            nonlocal opened
            if message["type"] == "websocket.accept" and not opened:
                opened = True
                WEBSOCKETS.inc()
            await send(message)

        try:
            await self.app(scope, receive, tracked)
        finally:
            if opened:
                WEBSOCKETS.dec()


def metrics_endpoint(engine: Any, subscribers: Any) -> Any:
    async def metrics(request: Request) -> Response:
        eng: AsyncEngine | None = engine()
        if eng is not None:
            pool = eng.sync_engine.pool
            for state, value in (("size", getattr(pool, "size", lambda: 0)()),
                                 ("checked_out", getattr(pool, "checkedout", lambda: 0)()),
                                 ("overflow", getattr(pool, "overflow", lambda: 0)())):
                POOL.labels(state=state).set(value)
        SUBSCRIPTIONS.set(subscribers())
        return Response(generate_latest(REGISTRY), media_type=CONTENT_TYPE_LATEST)

    return metrics


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time (UTC), level, logger, message, request id, and the exception if any."""

    converter = time.gmtime  # type: ignore[assignment]

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": self.formatTime(record, "%Y-%m-%dT%H:%M:%S") + f".{int(record.msecs):03d}Z",
            "level": record.levelname, "logger": record.name, "message": record.getMessage(),
        }
        request_id = request_id_var.get()
        if request_id:
            entry["request_id"] = request_id
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False)


def configure_logging(level: str, *, json_logs: bool) -> dict[str, Any]:
    """Root logging, and the dict config uvicorn should use for its own loggers."""
    formatter: dict[str, Any] = {"()": JsonFormatter} if json_logs else {
        "format": "%(asctime)s %(levelname)s %(name)s %(message)s"}
    config: dict[str, Any] = {
        "version": 1, "disable_existing_loggers": False,
        "formatters": {"default": formatter},
        "handlers": {"default": {"class": "logging.StreamHandler", "formatter": "default",
                                 "stream": "ext://sys.stderr"}},
        "root": {"handlers": ["default"], "level": level},
        "loggers": {"uvicorn": {"level": level}, "uvicorn.access": {"level": level}},
    }
    logging.config.dictConfig(config)
    return config

