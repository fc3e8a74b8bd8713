"""Who is acting, and what each role may do: one declared table, checked by the services."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any, TypeVar

from sqlalchemy import ColumnElement, Select

from domain.enums import Role
from domain.errors import Forbidden
from domain.regions import covers, in_scope

SelectT = TypeVar("SelectT", bound=Select[*tuple[Any, ...]])


class Op(StrEnum):
    READ = "READ"
    READ_PERSONAL_DATA = "READ_PERSONAL_DATA"
    REGISTER_HOUSEHOLD = "REGISTER_HOUSEHOLD"
    UPDATE_HOUSEHOLD = "UPDATE_HOUSEHOLD"
    FILE_COMPLAINT = "FILE_COMPLAINT"
    RESUBMIT_COMPLAINT = "RESUBMIT_COMPLAINT"
    VERIFY_COMPLAINT = "VERIFY_COMPLAINT"
    RETURN_COMPLAINT = "RETURN_COMPLAINT"
    REJECT_COMPLAINT = "REJECT_COMPLAINT"
    START_COMPLAINT = "START_COMPLAINT"
    RESOLVE_COMPLAINT = "RESOLVE_COMPLAINT"
    REOPEN_COMPLAINT = "REOPEN_COMPLAINT"
    REASSIGN_COMPLAINT = "REASSIGN_COMPLAINT"
    BULK_REASSIGN = "BULK_REASSIGN"
    PROPOSE_REFERRAL = "PROPOSE_REFERRAL"
    SEND_REFERRAL = "SEND_REFERRAL"
    RECORD_REFERRAL_RESPONSE = "RECORD_REFERRAL_RESPONSE"
    REVOKE_REFERRAL = "REVOKE_REFERRAL"
    VIEW_WORKLOAD = "VIEW_WORKLOAD"
    MANAGE_STAFF = "MANAGE_STAFF"


F, P, S, M, PA, A = (Role.FACILITATOR, Role.PUSKESOS_OFFICER, Role.SUPERVISOR, Role.MANAGER, Role.PARTNER,
                     Role.ADMIN)

#: role x operation. Row-level scope (the region subtree) is applied on top of this by every query.
PERMISSIONS: dict[Op, frozenset[Role]] = {
    Op.READ: frozenset({F, P, S, M, PA, A}),
    Op.READ_PERSONAL_DATA: frozenset({F, P, S, M, A}),
    Op.REGISTER_HOUSEHOLD: frozenset({F, P, S, M, A}),
    Op.UPDATE_HOUSEHOLD: frozenset({F, P, S, M, A}),
    Op.FILE_COMPLAINT: frozenset({F, P, S, M, A}),
    Op.RESUBMIT_COMPLAINT: frozenset({F, P, S, M, A}),
    Op.VERIFY_COMPLAINT: frozenset({S, M, A}),
    Op.RETURN_COMPLAINT: frozenset({S, M, A}),
    Op.REJECT_COMPLAINT: frozenset({S, M, A}),
    Op.START_COMPLAINT: frozenset({F, P, S, M, A}),
    Op.RESOLVE_COMPLAINT: frozenset({F, P, S, M, A}),
    Op.REOPEN_COMPLAINT: frozenset({S, M, A}),
    Op.REASSIGN_COMPLAINT: frozenset({S, M, A}),
    Op.BULK_REASSIGN: frozenset({S, M, A}),
    Op.PROPOSE_REFERRAL: frozenset({F, P, S, M, A}),
    Op.SEND_REFERRAL: frozenset({P, S, M, A}),
    Op.RECORD_REFERRAL_RESPONSE: frozenset({P, S, M, A}),
    Op.REVOKE_REFERRAL: frozenset({S, M, A}),  # someone else's referral; the sender may always revoke
    Op.VIEW_WORKLOAD: frozenset({S, M, A}),
    Op.MANAGE_STAFF: frozenset({A}),
}

#: roles that may be assigned complaints
ASSIGNABLE_ROLES = frozenset({F, P})


@dataclass(frozen=True, slots=True)
class Actor:
    id: int
    role: Role
    username: str
    #: roots of the region subtrees this actor works in; ``None`` is the whole country (admins)
    regions: tuple[str, ...] | None
    #: program codes a partner key is limited to (complaints and referrals); ``None``: no such limit
    programs: frozenset[str] | None = None
    #: a partner key granted personal data (NIK, No. KK, names, addresses)
    personal_data_grant: bool = False
    #: the API key this actor authenticated with, if any
    key_id: int | None = None

    @property
    def region_code(self) -> str | None:
        """The home region: the first subtree of the scope."""
        return self.regions[0] if self.regions else None

    def may(self, op: Op) -> bool:
        return self.role in PERMISSIONS[op]

    def require(self, op: Op) -> None:
        if not self.may(op):
            raise Forbidden(f"a {self.role.value.lower()} may not do this")

    def covers(self, region_code: str | None) -> bool:
        """Whether ``region_code`` lies in the actor's scope."""
        if self.regions is None:
            return True
        return region_code is not None and any(covers(scope, region_code) for scope in self.regions)

    def sees_region(self, region_code: str) -> bool:
        """Whether a region is in scope or on the way down to it (for navigating the region tree)."""
        return self.covers(region_code) or any(s.startswith(region_code + ".") for s in self.regions or ())

    def restrict(self, stmt: SelectT, column: ColumnElement[str] | Any) -> SelectT:
        """``stmt`` limited to rows whose ``column`` lies in the actor's scope."""
        if self.regions is None:
            return stmt
        return stmt.where(in_scope(column, self.regions))

    @property
    def sees_personal_data(self) -> bool:
        return self.may(Op.READ_PERSONAL_DATA) or self.personal_data_grant
