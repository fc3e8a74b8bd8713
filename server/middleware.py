"""Pure ASGI middleware (it sees WebSockets too, unlike BaseHTTPMiddleware): request ids, body size caps and
per-principal rate limits. Limits answer before any GraphQL or database work is done."""

from __future__ import annotations

import json
import logging
import math
import time
import uuid
from collections import OrderedDict
from dataclasses import dataclass

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from domain.errors import DomainError
from domain.staff.tokens import TokenSigner


async def _reply(send: Send, status: int, body: dict[str, object], headers: list[tuple[bytes, bytes]]) -> None:
    payload = json.dumps(body).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(payload)).encode()),
                            *headers]})
    await send({"type": "http.response.body", "body": payload})


class BodyLimit:
    """413 for request bodies over ``limit`` bytes, declared or streamed."""

    def __init__(self, app: ASGIApp, *, limit: int) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > self.limit):
            await _reply(send, 413, {"errors": [{"message": f"request body over {self.limit} bytes",
                                                 "extensions": {"code": "PAYLOAD_TOO_LARGE"}}]}, [])
            return
        seen = 0
        started = False

        async def counted() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.limit:
                    raise _TooLarge
            return message

        async def tracked(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, counted, tracked)
        except _TooLarge:
            if not started:
                await _reply(send, 413, {"errors": [{"message": f"request body over {self.limit} bytes",
                                                     "extensions": {"code": "PAYLOAD_TOO_LARGE"}}]}, [])


class _TooLarge(Exception):
    pass


#: API key prefixes that authenticated in this process recently (prefix -> monotonic expiry); only those get a
#: bucket of their own, so inventing prefixes cannot escape the per-address limit
KNOWN_KEYS: dict[str, float] = {}
KNOWN_KEY_SECONDS = 300.0


def key_authenticated(prefix: str) -> None:
    if len(KNOWN_KEYS) > 10_000:
        KNOWN_KEYS.clear()
    KNOWN_KEYS[prefix] = time.monotonic() + KNOWN_KEY_SECONDS


@dataclass
class _Bucket:
    tokens: float
    at: float


class RateLimit:
    """A token bucket per principal: the staff id in a valid bearer token, the API key's prefix, or else the
    client address (stricter, which also slows password guessing). 429 with ``Retry-After`` when empty."""

    def __init__(self, app: ASGIApp, *, signer: TokenSigner, rate: float, burst: int, anonymous_rate: float,
                 anonymous_burst: int, paths: tuple[str, ...] = ("/graphql", "/console/login"),
                 max_principals: int = 50_000) -> None:
        self.app = app
        self.signer = signer
        self.rate, self.burst = rate, burst
        self.anonymous_rate, self.anonymous_burst = anonymous_rate, anonymous_burst
        self.paths = paths
        self.max_principals = max_principals
        self._buckets: OrderedDict[str, _Bucket] = OrderedDict()

    def _principal(self, scope: Scope) -> tuple[str, float, int]:
        headers = dict(scope["headers"])
        credential = headers.get(b"authorization", b"").decode("latin-1").partition(" ")[2].strip() or \
            headers.get(b"x-api-key", b"").decode("latin-1").strip()
        if credential.startswith("rjk_"):
            prefix = credential[4:].partition("_")[0][:16]
            if KNOWN_KEYS.get(prefix, 0) > time.monotonic():
                return "key:" + prefix, self.rate, self.burst
            credential = ""  # an unproven key counts as no credential: forged prefixes share the address's bucket
        if not credential:
            cookies = headers.get(b"cookie", b"").decode("latin-1")
            for part in cookies.split(";"):
                name, _, value = part.strip().partition("=")
                if name == "rujuk_console":
                    credential = value
        if credential:
            try:
                return f"staff:{self.signer.verify(credential, 'access').staff_id}", self.rate, self.burst
            except DomainError:  # an invalid token counts as anonymous
                pass
        client = scope.get("client") or ("unknown", 0)
        return f"addr:{client[0]}", self.anonymous_rate, self.anonymous_burst

    def _take(self, key: str, rate: float, burst: int) -> float:
        """0 when the request may go, else the seconds until it could."""
        now = time.monotonic()
        bucket = self._buckets.get(key)
        if bucket is None:
            bucket = _Bucket(tokens=burst, at=now)
            self._buckets[key] = bucket
            if len(self._buckets) > self.max_principals:
                self._buckets.popitem(last=False)
        else:
            self._buckets.move_to_end(key)
            bucket.tokens = min(burst, bucket.tokens + (now - bucket.at) * rate)
            bucket.at = now
        if bucket.tokens >= 1:
            bucket.tokens -= 1
            return 0.0
        return (1 - bucket.tokens) / rate

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in {"http", "websocket"} or not (scope["path"] in self.paths or
                                                             scope["path"].startswith("/export/")):
            await self.app(scope, receive, send)
            return
        key, rate, burst = self._principal(scope)
        wait = self._take(key, rate, burst)
        if wait == 0:
            await self.app(scope, receive, send)
            return
        retry = str(max(1, math.ceil(wait)))
        if scope["type"] == "websocket":
            await send({"type": "websocket.close", "code": 4429, "reason": "too many requests"})
            return
        await _reply(send, 429, {"errors": [{"message": "too many requests; slow down",
                                             "extensions": {"code": "RATE_LIMITED", "retryAfter": int(retry)}}]},
                     [(b"retry-after", retry.encode())])


access_log = logging.getLogger("rujuk.access")


class RequestId:
    """Every HTTP response carries ``x-request-id`` (the client's, if it sent a sane one), and every request is
    logged once: method, path without its query string (which could hold personal data), status, time."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope["headers"])
        given = headers.get(b"x-request-id", b"").decode("latin-1")
        request_id = given if 0 < len(given) <= 64 and given.replace("-", "").isalnum() else uuid.uuid4().hex[:16]
        scope.setdefault("state", {})["request_id"] = request_id
        scope["headers"] = [(k, v) for k, v in scope["headers"] if k != b"x-request-id"] + \
            [(b"x-request-id", request_id.encode())]

        status = 500
        started = time.perf_counter()

        async def with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message.setdefault("headers", [])
                message["headers"] = [*message["headers"], (b"x-request-id", request_id.encode())]
            await send(message)

        try:
            await self.app(scope, receive, with_id)
        finally:
            access_log.info("%s %s %d %.1fms request=%s", scope["method"], scope["path"], status,
                            (time.perf_counter() - started) * 1000, request_id)


#: the scope key under which :class:`JsonBody` leaves the parsed request object
PARSED_BODY = "rujuk.json_body"


class JsonBody:
    """A POSTed GraphQL request must be one JSON object (UTF-8): anything else (``null``, a number, an array
    batch, invalid UTF-8, nesting or numbers past the parser's limits) is answered 400 here, before the GraphQL
    view could trip over it."""

    def __init__(self, app: ASGIApp, *, path: str = "/graphql") -> None:
        self.app = app
        self.path = path

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] != self.path or scope["method"] != "POST":
            await self.app(scope, receive, send)
            return
        content_type = dict(scope["headers"]).get(b"content-type", b"").split(b";")[0].strip().lower()
        if content_type != b"application/json":
            await self.app(scope, receive, send)
            return
        chunks: list[bytes] = []
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            chunks.append(message.get("body", b""))
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        problem = None
        try:
            parsed = json.loads(body.decode("utf-8"))
            if not isinstance(parsed, dict):
                problem = "send one JSON object: {\"query\": ..., \"variables\": {...}} (batches are not supported)"
        except (UnicodeDecodeError, ValueError, RecursionError):
            problem = "the body is not valid UTF-8 JSON"
        if problem is not None:
            await _reply(send, 400, {"errors": [{"message": problem, "extensions": {"code": "BAD_REQUEST"}}]}, [])
            return
        scope[PARSED_BODY] = parsed  # the GraphQL app may answer from it without parsing the body again
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)


class Sockets:
    """WebSockets on ``path`` go from here straight to ``app`` (the GraphQL app).

    The layers below this one (body limit, JSON body, CORS, starlette's exception middleware and router) only
    pass a WebSocket through, but each would stay suspended for the socket's whole life: a console holds its
    socket all day, and every suspended layer is memory and more objects for each full pass of the garbage
    collector. Rate limiting, the WebSocket gauge and the request id sit above this one and still apply."""

    def __init__(self, app: ASGIApp, *, sockets: ASGIApp, path: str = "/graphql") -> None:
        self.app = app
        self.sockets = sockets
        self.path = path

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "websocket" and scope["path"] == self.path:
            await self.sockets(scope, receive, send)
        else:
            await self.app(scope, receive, send)
