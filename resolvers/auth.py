"""login and refreshToken."""

from __future__ import annotations

from domain.errors import DomainError
from domain.staff import service
from domain.staff.models import Staff as StaffRow
from resolvers.common import Info
from schema.errors import AuthError, errors_of
from schema.payloads import LoginPayload
from schema.types.reference import Staff


def _tokens(info: Info, staff: StaffRow) -> LoginPayload:
    signer = info.context.services.signer
    return LoginPayload(access_token=signer.issue(staff.id, "access"), refresh_token=signer.issue(staff.id, "refresh"),
                        expires_in=signer.access_ttl, staff=Staff.from_row(staff), errors=[])


async def login(info: Info, username: str, password: str) -> LoginPayload:
    try:
        async with info.context.db() as session:
            staff = await service.authenticate(session, username=username, password=password)
    except DomainError as exc:
        return LoginPayload(access_token=None, refresh_token=None, expires_in=None, staff=None,
                            errors=errors_of(exc, AuthError))
    return _tokens(info, staff)


async def refresh_token(info: Info, refresh_token: str) -> LoginPayload:
    try:
        claims = info.context.services.signer.verify(refresh_token, "refresh")
        async with info.context.db() as session:
            staff = await service.active_staff(session, staff_id=claims.staff_id)
    except DomainError as exc:
        return LoginPayload(access_token=None, refresh_token=None, expires_in=None, staff=None,
                            errors=errors_of(exc, AuthError))
    return _tokens(info, staff)
