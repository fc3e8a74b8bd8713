"""Who a request is: a bearer access token (staff) or an API key (partner systems)."""

from __future__ import annotations

from domain.actor import Actor
from domain.errors import DomainError
from domain.staff.api_keys import authenticate_key, looks_like_key
from domain.staff.service import active_staff, actor_of
from server.context import Services
from server.middleware import key_authenticated


async def authenticate(services: Services, header: str) -> Actor:
    """The actor for an ``Authorization`` header value (``Bearer <token or key>``); raises
    :class:`DomainError` (UNAUTHENTICATED / TOKEN_EXPIRED) otherwise. Uses a short session of its own, so a
    WebSocket's operations never share the one that loaded the account."""
    scheme, _, token = header.partition(" ")
    token = token.strip()
    try:
        if scheme.lower() != "bearer" or not token:
            raise DomainError("use 'Authorization: Bearer <token>'", code="INVALID_TOKEN")
        async with services.sessionmaker() as session:
            if looks_like_key(token):
                actor = await authenticate_key(session, credential=token)
                key_authenticated(token[4:].partition("_")[0][:16])
                return actor
            claims = services.signer.verify(token, "access")
            return actor_of(await active_staff(session, staff_id=claims.staff_id))
    except DomainError as exc:
        exc.code = exc.code if exc.code == "TOKEN_EXPIRED" else "UNAUTHENTICATED"
        raise


def credential_of(headers: dict[str, str] | object) -> str:
    """The credential header of a request: ``Authorization``, or ``X-Api-Key`` for partner tools."""
    get = getattr(headers, "get")  # noqa: B009 - starlette Headers or a plain dict
    header: str = get("authorization", "") or ""
    if not header and (api_key := get("x-api-key")):
        header = f"Bearer {api_key}"
    return header
