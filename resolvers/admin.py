"""createUser, createApiKey, revokeApiKey, apiKeys, auditLog (admins only)."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from domain.actor import Actor
from domain.enums import Role
from domain.errors import DomainError
from domain.events import audit
from domain.numbers import bigint
from domain.staff import api_keys, service
from domain.staff.models import ApiKey as ApiKeyRow
from resolvers.common import Info, attempt, optional_pk, pk, read
from schema.errors import AuthError, errors_of
from schema.types.admin import (
    ApiKey,
    AuditEntry,
    AuditPage,
    CreateApiKeyInput,
    CreateApiKeyPayload,
    CreateUserInput,
    CreateUserPayload,
    RevokeApiKeyPayload,
)
from schema.types.reference import Staff

MAX_AUDIT_PAGE = 500


async def create_user(info: Info, input: CreateUserInput) -> CreateUserPayload:
    try:
        supervisor_id = optional_pk(input.supervisor_id, "Staff", field="supervisorId")
        row = await attempt(info, lambda s, a: service.create_user(
            s, actor=a, username=input.username, password=input.password, full_name=input.full_name,
            role=Role(input.role), region_code=input.region_code,
            extra_region_codes=tuple(input.extra_region_codes), supervisor_id=supervisor_id))
    except DomainError as exc:
        return CreateUserPayload(staff=None, errors=errors_of(exc, AuthError))
    return CreateUserPayload(staff=Staff.from_row(row), errors=[])


async def create_api_key(info: Info, input: CreateApiKeyInput) -> CreateApiKeyPayload:
    async def work(session: AsyncSession, actor: Actor) -> api_keys.NewKey:
        made = await api_keys.create_api_key(
            session, actor=actor, partner_id=pk(input.partner_id, "Staff", field="partnerId"), name=input.name,
            region_codes=list(input.region_codes), program_codes=list(input.program_codes),
            personal_data=input.personal_data)
        await audit(session, actor=actor, action="CREATE_API_KEY", entity_type="ApiKey", entity_id=made.key.id,
                    detail={"partner": made.key.staff_id, "personalData": made.key.personal_data})
        return made

    try:
        made = await attempt(info, work)
    except DomainError as exc:
        return CreateApiKeyPayload(api_key=None, secret=None, errors=errors_of(exc, AuthError))
    return CreateApiKeyPayload(api_key=ApiKey.from_row(made.key), secret=made.secret, errors=[])


async def revoke_api_key(info: Info, id: str) -> RevokeApiKeyPayload:
    async def work(session: AsyncSession, actor: Actor) -> ApiKeyRow:
        key = await api_keys.revoke_api_key(session, actor=actor, key_id=pk(id, "ApiKey"))
        await audit(session, actor=actor, action="REVOKE_API_KEY", entity_type="ApiKey", entity_id=key.id)
        return key

    try:
        key = await attempt(info, work)
    except DomainError as exc:
        return RevokeApiKeyPayload(api_key=None, errors=errors_of(exc, AuthError))
    info.context.after_commit(lambda: info.context.services.announce_revocation(key.id))
    return RevokeApiKeyPayload(api_key=ApiKey.from_row(key), errors=[])


async def list_api_keys(info: Info) -> list[ApiKey]:
    return [ApiKey.from_row(k) for k in await read(info, lambda s, a: api_keys.list_api_keys(s, actor=a))]


async def audit_log(info: Info, actor_id: str | None, action: str | None, before: str | None,
                    first: int | None) -> AuditPage:
    size = min(max(first or 100, 1), MAX_AUDIT_PAGE)
    who = optional_pk(actor_id, "Staff", field="actorId")
    cursor = bigint(before) if before else None
    rows, more = await read(info, lambda s, a: service.list_audit(s, actor=a, actor_id=who, action=action,
                                                                  before=cursor, first=size))
    return AuditPage(entries=[AuditEntry.from_row(r) for r in rows], has_more=more)
