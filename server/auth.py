"""Who a request is: a bearer access token (staff) or an API key (partner systems)."""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession

from domain.actor import Actor
from domain.errors import DomainError
from domain.staff.api_keys import authenticate_key, looks_like_key
from domain.staff.service import Account, active_account, actor_of
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
    staff = await active_account(session, staff_id=claims.staff_id)
    actor = actor_of(staff)
    _remember(staff, actor)
    return actor


@dataclass(frozen=True, slots=True)
class KnownStaff:
    """The account behind a token as last loaded: its actor, and the columns the actor was made from, which a
    compiled read checks against the staff row in its own statement before its answer is used."""

    actor: Actor
    role: str
    username: str
    region_code: str | None
    extra_region_codes: tuple[str, ...]


_KNOWN: OrderedDict[int, KnownStaff] = OrderedDict()
KNOWN_SIZE = 20_000


def _remember(staff: Account, actor: Actor) -> None:
    _KNOWN[staff.id] = KnownStaff(actor=actor, role=staff.role, username=staff.username,
                                  region_code=staff.region_code, extra_region_codes=tuple(staff.extra_region_codes))
    _KNOWN.move_to_end(staff.id)
    if len(_KNOWN) > KNOWN_SIZE:
        _KNOWN.popitem(last=False)


def recall(services: Services, header: str) -> KnownStaff | None:
    """The account of a valid staff access token as last loaded in this process, unconfirmed; ``None`` for
    API keys, invalid tokens and accounts not seen yet. Whoever uses it must confirm it (see
    :func:`resolvers.compiled.staff_unchanged`) or authenticate again."""
    scheme, _, token = header.partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token or looks_like_key(token):
        return None
    try:
        claims = services.signer.verify(token, "access")
    except DomainError:
        return None
    return _KNOWN.get(claims.staff_id)


def forget(staff_id: int) -> None:
    _KNOWN.pop(staff_id, None)


def credential_of(headers: dict[str, str] | object) -> str:
    """The credential header of a request: ``Authorization``, or ``X-Api-Key`` for partner tools."""
    get = getattr(headers, "get")  # noqa: B009 - starlette Headers or a plain dict
    header: str = get("authorization", "") or ""
    if not header and (api_key := get("x-api-key")):
        header = f"Bearer {api_key}"
    return header
