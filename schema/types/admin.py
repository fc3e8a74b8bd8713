"""Administration: staff accounts, partner API keys and the audit log (admins only)."""

from __future__ import annotations

import datetime as dt

import strawberry
from strawberry.scalars import JSON

from domain.events import AuditEntry as AuditRow
from domain.staff.models import ApiKey as ApiKeyRow
from schema.enums import Role
from schema.errors import AuthError
from schema.relay import Node, to_global_id
from schema.types.reference import Staff

F = strawberry.field


@strawberry.type(description="A partner system's API key (the secret itself is shown only once, at creation).")
class ApiKey(Node):
    name: str = F(description="What the key is for.")
    prefix: str = F(description="Public part of the key, to tell keys apart in logs and lists.")
    partner_id: strawberry.ID = F(description="Global id of the partner account.")
    region_codes: list[str] = F(description="Regions the key is limited to (empty: the partner's own).")
    program_codes: list[str] = F(description="Programs the key is limited to (empty: all).")
    personal_data: bool = F(description="Whether the key sees NIK, No. KK, names and addresses unmasked.")
    created_at: dt.datetime = F(description="When it was created.")
    revoked_at: dt.datetime | None = F(description="When it was revoked; a revoked key no longer works.")
    last_used_at: dt.datetime | None = F(description="Last use (updated at most once a minute).")

    @classmethod
    def from_row(cls, row: ApiKeyRow) -> ApiKey:
        return cls(id=to_global_id("ApiKey", row.id), name=row.name, prefix=row.prefix,
                   partner_id=to_global_id("Staff", row.staff_id), region_codes=list(row.region_codes),
                   program_codes=list(row.program_codes), personal_data=row.personal_data,
                   created_at=row.created_at, revoked_at=row.revoked_at, last_used_at=row.last_used_at)


@strawberry.type(description="One audit log entry: who did or saw what, when, from where.")
class AuditEntry:
    id: strawberry.ID = F(description="Position in the audit log.")
    at: dt.datetime = F(description="When.")
    actor_id: strawberry.ID | None = F(description="Global id of the staff member (or partner account).")
    action: str = F(description="What: CHANGE (a mutation and the events it wrote), READ_PERSONAL_DATA, "
                                "SEARCH_BY_NIK, CREATE_USER, CREATE_API_KEY, REVOKE_API_KEY.")
    entity_type: str = F(description="Kind of object concerned.")
    entity_id: int | None = F(description="Database id of the object, when one.")
    detail: JSON = F(description="Facts of the entry; never personal data.")
    origin: str | None = F(description="Client address.")

    @classmethod
    def from_row(cls, row: AuditRow) -> AuditEntry:
        return cls(id=strawberry.ID(str(row.id)), at=row.at,
                   actor_id=to_global_id("Staff", row.actor_id) if row.actor_id else None, action=row.action,
                   entity_type=row.entity_type, entity_id=row.entity_id, detail=JSON(dict(row.detail)),
                   origin=row.origin)


@strawberry.type(description="A page of the audit log, newest first.")
class AuditPage:
    entries: list[AuditEntry] = F(description="The entries.")
    has_more: bool = F(description="Whether older entries follow; pass the last `id` as `before`.")


@strawberry.type(description="Result of `createUser`.")
class CreateUserPayload:
    staff: Staff | None = F(description="The account created.")
    errors: list[AuthError] = F(description="Why nothing was created; empty on success.")


@strawberry.type(description="Result of `createApiKey`.")
class CreateApiKeyPayload:
    api_key: ApiKey | None = F(description="The key created.")
    secret: str | None = F(description="The full key: send it as `Authorization: Bearer <key>` or `X-Api-Key`. "
                                       "Shown only here, once; store it safely.")
    errors: list[AuthError] = F(description="Why nothing was created; empty on success.")


@strawberry.type(description="Result of `revokeApiKey`.")
class RevokeApiKeyPayload:
    api_key: ApiKey | None = F(description="The key, now revoked.")
    errors: list[AuthError] = F(description="Why nothing changed; empty on success.")


@strawberry.input(description="A staff account to create.")
class CreateUserInput:
    username: str = F(description="Login name: 3-80 lowercase letters, digits, dots, dashes, underscores.")
    password: str = F(description="At least 8 characters.")
    full_name: str = F(description="Name shown to colleagues.")
    role: Role = F(description="What the account may do.")
    region_code: str | None = F(default=None, description="Home region (not for admins).")
    extra_region_codes: list[str] = F(default_factory=list, description="Further regions covered.")
    supervisor_id: strawberry.ID | None = F(default=None, description="Global id of the supervisor.")


@strawberry.input(description="A partner API key to create.")
class CreateApiKeyInput:
    partner_id: strawberry.ID = F(description="Global id of a PARTNER account.")
    name: str = F(description="What the key is for, e.g. `BPJS Kesehatan Sumut – nightly sync`.")
    region_codes: list[str] = F(default_factory=list, description="Limit to these regions (within the partner's).")
    program_codes: list[str] = F(default_factory=list, description="Limit to complaints and referrals about these "
                                 "programs.")
    personal_data: bool = F(default=False, description="Grant unmasked personal data (reads are audited).")
