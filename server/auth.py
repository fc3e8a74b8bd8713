"""Who a request is: a bearer access token (staff) or an API key (partner systems)."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from domain.actor import Actor
from domain.errors import DomainError
from domain.staff.api_keys import authenticate_key, looks_like_key
from domain.staff.service import active_staff, actor_of
from domain.staff.tokens import TokenClaims
from server.context import Services
from server.middleware import key_authenticated


async def authenticate(services: Services, header: str, *, session: AsyncSession | None = None) -> Actor:
    """The actor for an ``Authorization`` header value (``Bearer <token or key>``); raises
    :class:`DomainError` (UNAUTHENTICATED / TOKEN_EXPIRED) otherwise. An HTTP request loads the account in
    its operation's own session (one transaction, one connection); without ``session`` a short session of
    its own is used, so a WebSocket's operations never share the one that loaded the account."""
    scheme, _, token = header.partition(" ")
    token = token.strip()
    try:
        if scheme.lower() != "bearer" or not token:
            raise DomainError("use 'Authorization: Bearer <token>'", code="INVALID_TOKEN")
        claims = None if looks_like_key(token) else services.signer.verify(token, "access")
        if session is not None:
            return await _actor(session, token, claims)
        async with services.sessionmaker() as own:
            return await _actor(own, token, claims)
    except DomainError as exc:
        exc.code = exc.code if exc.code == "TOKEN_EXPIRED" else "UNAUTHENTICATED"
        raise


async def _actor(session: AsyncSession, token: str, claims: TokenClaims | None) -> Actor:
    if claims is None:
        actor = await authenticate_key(session, credential=token)
        key_authenticated(token[4:].partition("_")[0][:16])
        return actor
    return actor_of(await active_staff(session, staff_id=claims.staff_id))


def credential_of(headers: dict[str, str] | object) -> str:
    """The credential header of a request: ``Authorization``, or ``X-Api-Key`` for partner tools."""
    get = getattr(headers, "get")  # noqa: B009 - starlette Headers or a plain dict
    header: str = get("authorization", "") or ""
    if not header and (api_key := get("x-api-key")):
        header = f"Bearer {api_key}"
    return header
