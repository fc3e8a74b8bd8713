"""Staff accounts: creation, password checks (argon2) and lookups."""

from __future__ import annotations

import re
from typing import Protocol, cast

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from domain.actor import Actor, Op
from domain.enums import Role
from domain.errors import DomainError, Unauthenticated, ValidationFailed
from domain.events import AuditEntry, audit
from domain.regions import Region
from domain.staff.models import Staff

_hasher = PasswordHasher()
# a real hash to verify against when the user does not exist, so both paths take the same time
_DUMMY_HASH = _hasher.hash("rujuk-timing-equaliser")
USERNAME_RE = re.compile(r"^[a-z0-9][a-z0-9._-]{2,79}$")
MIN_PASSWORD = 8


def hash_password(password: str) -> str:
    return _hasher.hash(password)


class Account(Protocol):
    """What an actor is made from: a :class:`Staff` row, or the columns :func:`active_account` reads."""

    @property
    def id(self) -> int: ...
    @property
    def role(self) -> str: ...
    @property
    def username(self) -> str: ...
    @property
    def region_code(self) -> str | None: ...
    @property
    def extra_region_codes(self) -> list[str]: ...


def actor_of(staff: Account) -> Actor:
    regions = None if staff.region_code is None else (staff.region_code, *staff.extra_region_codes)
    return Actor(id=staff.id, role=Role(staff.role), username=staff.username, regions=regions)


async def authenticate(session: AsyncSession, *, username: str, password: str) -> Staff:
    staff = (await session.scalars(select(Staff).where(Staff.username == username.strip().lower()))).first()
    try:
        _hasher.verify(staff.password_hash if staff else _DUMMY_HASH, password)
    except (VerificationError, InvalidHashError):
        staff = None
    if staff is None or not staff.active:
        raise Unauthenticated("wrong username or password", code="INVALID_CREDENTIALS")
    return staff


async def create_staff(
    session: AsyncSession,
    *,
    username: str,
    password: str,
    full_name: str,
    role: Role,
    region_code: str | None,
    supervisor_id: int | None = None,
    password_hash: str | None = None,
    extra_region_codes: tuple[str, ...] = (),
) -> Staff:
    errors: list[DomainError] = []
    username = username.strip().lower()
    if not USERNAME_RE.match(username):
        errors.append(DomainError("3-80 characters: lowercase letters, digits, dot, dash, underscore",
                                  field="username", code="INVALID_USERNAME"))
    if password_hash is None and len(password) < MIN_PASSWORD:
        errors.append(DomainError(f"a password has at least {MIN_PASSWORD} characters", field="password",
                                  code="WEAK_PASSWORD"))
    if region_code is None and role is not Role.ADMIN:
        errors.append(DomainError("every role but admin works in a region", field="region", code="REQUIRED"))
    for code in (region_code, *extra_region_codes) if region_code is not None else ():
        if await session.get(Region, code) is None:
            errors.append(DomainError("no such region", field="region", code="NOT_FOUND"))
    if errors:
        raise ValidationFailed(errors)
    staff = Staff(username=username, password_hash=password_hash or hash_password(password),
                  full_name=full_name.strip() or username, role=role.value, region_code=region_code,
                  extra_region_codes=list(extra_region_codes), supervisor_id=supervisor_id)
    session.add(staff)
    try:
        async with session.begin_nested():
            await session.flush()
    except IntegrityError:
        raise DomainError("this username is taken", field="username", code="USERNAME_TAKEN") from None
    return staff


async def create_user(session: AsyncSession, *, actor: Actor, username: str, password: str, full_name: str,
                      role: Role, region_code: str | None, extra_region_codes: tuple[str, ...] = (),
                      supervisor_id: int | None = None) -> Staff:
    """An admin creates a staff or partner account (audited)."""
    actor.require(Op.MANAGE_STAFF)
    staff = await create_staff(session, username=username, password=password, full_name=full_name, role=role,
                               region_code=region_code, extra_region_codes=extra_region_codes,
                               supervisor_id=supervisor_id)
    await audit(session, actor=actor, action="CREATE_USER", entity_type="Staff", entity_id=staff.id,
                detail={"role": role.value, "region": region_code})
    return staff


_STAFF = Staff.__table__
_ACCOUNT = select(_STAFF.c.id, _STAFF.c.role, _STAFF.c.username, _STAFF.c.region_code, _STAFF.c.extra_region_codes,
                  _STAFF.c.active)


async def active_account(session: AsyncSession, *, staff_id: int) -> Account:
    """The account behind a token, as the columns an actor is made from: a plain row, no ORM object (this runs
    for every authenticated request; loading a whole :class:`Staff` cost a third more). A deactivated account is
    treated like a bad token."""
    row = (await session.execute(_ACCOUNT.where(_STAFF.c.id == staff_id))).first()
    if row is None or not row.active:
        raise Unauthenticated("the token is not valid", code="INVALID_TOKEN")
    return cast(Account, row)


async def active_staff(session: AsyncSession, *, staff_id: int) -> Staff:
    """The account behind a token; a deactivated account is treated like a bad token."""
    staff = await session.get(Staff, staff_id)
    if staff is None or not staff.active:
        raise Unauthenticated("the token is not valid", code="INVALID_TOKEN")
    return staff


async def list_audit(session: AsyncSession, *, actor: Actor, actor_id: int | None, action: str | None,
                     before: int | None, first: int) -> tuple[list[AuditEntry], bool]:
    """The audit log, newest first (admins only)."""
    actor.require(Op.MANAGE_STAFF)
    stmt = select(AuditEntry).order_by(AuditEntry.id.desc()).limit(first + 1)
    if actor_id is not None:
        stmt = stmt.where(AuditEntry.actor_id == actor_id)
    if action is not None:
        stmt = stmt.where(AuditEntry.action == action)
    if before is not None:
        stmt = stmt.where(AuditEntry.id < before)
    rows = list(await session.scalars(stmt))
    return rows[:first], len(rows) > first
