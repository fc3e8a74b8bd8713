"""``GET /export/{complaints,households,referrals}.ndjson``: the bulk export as newline-delimited JSON.

Authenticated like the API (bearer token or API key), with the same scope and masking. The response
streams one object per line from one snapshot and ends with ``{"type": "end", "rows": N, "cursor": C}``;
``C`` (also in the ``X-Rujuk-Cursor`` header) is the event-log cursor to continue with ``changes(after: C)``.
Optional ``?region=<code>`` narrows it to a region within the caller's scope.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator, Callable
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse

from domain import export
from domain.errors import DomainError
from domain.regions import is_valid_code
from schema.relay import to_global_id
from server.auth import authenticate, credential_of
from server.context import Services

#: rows per chunk of the response body
CHUNK_ROWS = 500


def _encode(value: Any) -> Any:
    if isinstance(value, export.Ref):
        return str(to_global_id(value.type_name, value.pk))
    if isinstance(value, dt.date):
        return value.isoformat()
    raise TypeError(type(value).__name__)


async def _encoded(rows: AsyncIterator[dict[str, Any]]) -> AsyncIterator[list[str]]:
    """Rows encoded as JSON lines, in chunks of CHUNK_ROWS (one send per row would cost more than the row)."""
    chunk: list[str] = []
    async for row in rows:
        chunk.append(orjson.dumps(row, default=_encode, option=orjson.OPT_PASSTHROUGH_DATACLASS).decode())
        if len(chunk) >= CHUNK_ROWS:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def _error(status: int, code: str, message: str) -> Response:
    return JSONResponse({"errors": [{"message": message, "extensions": {"code": code}}]}, status_code=status)


def export_endpoint(services: Callable[[], Services]) -> Callable[[Request], Any]:
    async def handle(request: Request) -> Response:
        kind = request.path_params["kind"]
        if kind not in export.KINDS:
            return _error(404, "NOT_FOUND", f"export one of: {', '.join(export.KINDS)}")
        svc = services()
        header = credential_of(request.headers)
        if not header:
            return _error(401, "UNAUTHENTICATED", "send 'Authorization: Bearer <token or API key>'")
        try:
            actor = await authenticate(svc, header)
        except DomainError as exc:
            return _error(401, exc.code, exc.message)
        region = request.query_params.get("region") or None
        if region is not None and (not is_valid_code(region) or not actor.covers(region)):
            return _error(400, "INVALID_REGION_CODE", "region must be a Kemendagri code within your area")
        session = svc.sessionmaker()
        try:
            cursor = await export.snapshot(session)
            if kind == "households":
                rows = export.households(session, actor=actor, region=region, cipher=svc.cipher)
                lines = _encoded(rows)
            else:  # complaints and referrals: PostgreSQL writes the JSON lines
                lines = (export.complaint_lines if kind == "complaints" else export.referral_lines)(
                    session, actor=actor, region=region)
            first = await anext(lines, None)
        except DomainError as exc:
            await session.close()
            return _error(403, exc.code, exc.message)
        except BaseException:
            await session.close()
            raise

        async def body() -> AsyncIterator[bytes]:
            count = 0
            try:
                if first is not None:
                    count = len(first)
                    yield ("\n".join(first) + "\n").encode()
                    async for batch in lines:
                        count += len(batch)
                        yield ("\n".join(batch) + "\n").encode()
                yield orjson.dumps({"type": "end", "rows": count, "cursor": str(cursor)}) + b"\n"
                await session.commit()
            finally:
                await session.close()

        return StreamingResponse(body(), media_type="application/x-ndjson",
                                 headers={"x-rujuk-cursor": str(cursor), "cache-control": "no-store"})

    return handle
