"""API keys for integration partners: created by admins, shown once, stored as a digest, limited to
regions and programs, read-only (the PARTNER role may only read), revocable, with a last-used time."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import secrets
from dataclasses import dataclass

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from domain.actor import Actor, Op
from domain.enums import Role
from domain.errors import DomainError, NotFound, Unauthenticated, ValidationFailed
from domain.programs import Program
from domain.regions import covers
from domain.staff.models import ApiKey, Staff

KEY_PREFIX = "rjk_"
#: write last_used_at at most this often per key (a pull loop makes many requests a minute)
TOUCH_EVERY = dt.timedelta(minutes=1)


def _digest(secret: str) -> bytes:
    return hashlib.sha256(secret.encode()).digest()


def looks_like_key(credential: str) -> bool:
    return credential.startswith(KEY_PREFIX)


@dataclass(frozen=True, slots=True)
class NewKey:
    key: ApiKey
    #: the full key, to be shown once
    secret: str


async def create_api_key(session: AsyncSession, *, actor: Actor, partner_id: int, name: str,
                         region_codes: list[str], program_codes: list[str], personal_data: bool) -> NewKey:
    actor.require(Op.MANAGE_STAFF)
    partner = await session.get(Staff, partner_id)
    if partner is None or partner.role != Role.PARTNER.value:
        raise NotFound("no such partner account", field="partnerId")
    errors: list[DomainError] = []
    if not name.strip() or len(name) > 120:
        errors.append(DomainError("name the key (1-120 characters)", field="name", code="REQUIRED"))
    home = (partner.region_code, *partner.extra_region_codes) if partner.region_code else None
    for i, code in enumerate(region_codes):
        if home is not None and not any(covers(h, code) for h in home):
            errors.append(DomainError("a key covers at most its partner's regions", field=f"regionCodes.{i}",
                                      code="OUT_OF_SCOPE"))
    known = set(await session.scalars(select(Program.code).where(Program.code.in_(program_codes))))
    errors += [DomainError("no such program", field=f"programCodes.{i}", code="NOT_FOUND")
               for i, code in enumerate(program_codes) if code not in known]
    if errors:
        raise ValidationFailed(errors)
    prefix = base64.b32encode(secrets.token_bytes(5)).decode().lower()
    secret = secrets.token_urlsafe(32)
    key = ApiKey(staff_id=partner.id, name=name.strip(), prefix=prefix, secret_digest=_digest(secret),
                 region_codes=sorted(set(region_codes)), program_codes=sorted(set(program_codes)),
                 personal_data=personal_data, created_by_id=actor.id)
    session.add(key)
    await session.flush()
    return NewKey(key=key, secret=f"{KEY_PREFIX}{prefix}_{secret}")


async def revoke_api_key(session: AsyncSession, *, actor: Actor, key_id: int) -> ApiKey:
    actor.require(Op.MANAGE_STAFF)
    key = await session.get(ApiKey, key_id)
    if key is None:
        raise NotFound("no such API key", field="id")
    if key.revoked_at is None:
        key.revoked_at = dt.datetime.now(dt.UTC)
        await session.flush()
    return key


async def list_api_keys(session: AsyncSession, *, actor: Actor) -> list[ApiKey]:
    actor.require(Op.MANAGE_STAFF)
    return list(await session.scalars(select(ApiKey).order_by(ApiKey.id)))


async def authenticate_key(session: AsyncSession, *, credential: str,
                           now: dt.datetime | None = None) -> Actor:
    """The actor behind ``rjk_<prefix>_<secret>``: the partner's account, narrowed to the key's regions and
    programs, with the key's personal-data grant."""
    invalid = Unauthenticated("the API key is not valid", code="INVALID_TOKEN")
    body = credential[len(KEY_PREFIX):]
    prefix, _, secret = body.partition("_")
    if not prefix or not secret or len(prefix) > 16:
        raise invalid
    key = (await session.scalars(select(ApiKey).where(ApiKey.prefix == prefix))).first()
    if key is None or key.revoked_at is not None or not hmac.compare_digest(key.secret_digest, _digest(secret)):
        raise invalid
    partner = await session.get(Staff, key.staff_id)
    if partner is None or not partner.active:
        raise invalid
    now = now or dt.datetime.now(dt.UTC)
    if key.last_used_at is None or now - key.last_used_at > TOUCH_EVERY:
        await session.execute(update(ApiKey).where(ApiKey.id == key.id).values(last_used_at=now))
        await session.commit()
    home = (partner.region_code, *partner.extra_region_codes) if partner.region_code else None
    regions = tuple(key.region_codes) if key.region_codes else home
    return Actor(id=partner.id, role=Role(partner.role), username=partner.username, regions=regions,
                 programs=frozenset(key.program_codes) if key.program_codes else None,
                 personal_data_grant=key.personal_data, key_id=key.id)
