"""submitIntakeBatch: many items collected offline, one result each."""

from __future__ import annotations

import datetime as dt
from enum import Enum

import strawberry

from schema.enums import Channel, ComplaintKind, Priority, Sector
from schema.errors import IntakeError
from schema.inputs import RegisterHouseholdInput, UpdateHouseholdInput
from schema.types.complaints import Complaint
from schema.types.households import Household
from schema.types.referrals import Referral

F = strawberry.field


@strawberry.enum(description="What became of a batch item.")
class IntakeItemStatus(Enum):
    CREATED = strawberry.enum_value("CREATED", description="Stored (or, with `replayed`, stored by an earlier send).")
    UPDATED = strawberry.enum_value("UPDATED", description="The household update was applied.")
    DUPLICATE = strawberry.enum_value(
        "DUPLICATE",
        description="The NIK or No. KK is already registered; `household` is "
        "the existing one when it is in your area. Nothing was stored.",
    )
    CONFLICT = strawberry.enum_value(
        "CONFLICT",
        description="The object changed on the server since the tablet read "
        "it (STALE_VERSION); nothing was overwritten.",
    )
    REJECTED = strawberry.enum_value(
        "REJECTED", description="The item breaks a rule; see `errors`. Nothing was stored."
    )


@strawberry.input(description="A complaint collected offline.")
class BatchComplaintInput:
    household_id: strawberry.ID | None = F(default=None, description="Global id of a household already on the server.")
    household_key: str | None = F(
        default=None,
        description="Or: the idempotency key of the item (in this or an earlier batch) that registered the household.",
    )
    member_id: strawberry.ID | None = F(default=None, description="Global id of the member concerned.")
    kind: ComplaintKind = F(default=ComplaintKind.COMPLAINT, description="Question, suggestion or complaint.")
    sector: Sector = F(description="Sector concerned.")
    program_id: strawberry.ID | None = F(default=None, description="Program concerned.")
    description: str = F(description="What the household reported.")
    channel: Channel = F(default=Channel.FACILITATOR_VISIT, description="How it reached the service.")
    priority: Priority = F(default=Priority.NORMAL, description="Urgency.")
    reported_at: dt.datetime | None = F(
        default=None, description="When reported (default: the item's `clientTimestamp`)."
    )


@strawberry.input(description="A referral proposal collected offline.")
class BatchReferralInput:
    complaint_id: strawberry.ID | None = F(default=None, description="Global id of a complaint on the server.")
    complaint_key: str | None = F(default=None, description="Or: the idempotency key of the item that filed it.")
    program_id: strawberry.ID = F(description="Global id of the program.")
    consent_given: bool = F(description="Whether the household consented.")
    consent_override_reason: str | None = F(default=None, description="Why it may be sent without consent.")
    note: str | None = F(default=None, description="Note for the receiving agency.")


@strawberry.input(
    description="One item of a batch: exactly one of `household`, `householdUpdate`, `complaint`, `referral`."
)
class IntakeItemInput:
    idempotency_key: str = F(
        description="The tablet's key for this item (e.g. a UUID); re-sending it returns the first result."
    )
    client_timestamp: dt.datetime | None = F(default=None, description="When the item was recorded on the tablet.")
    household: RegisterHouseholdInput | None = F(default=None, description="A household to register.")
    household_update: UpdateHouseholdInput | None = F(default=None, description="A change to a household.")
    complaint: BatchComplaintInput | None = F(default=None, description="A complaint to file.")
    referral: BatchReferralInput | None = F(default=None, description="A referral to propose (DRAFT).")


@strawberry.input(description="A batch collected offline.")
class SubmitIntakeBatchInput:
    items: list[IntakeItemInput] = F(description="1 to 200 items, applied in order.")


@strawberry.type(description="The result of one batch item.")
class IntakeItemResult:
    idempotency_key: str = F(description="The item's key.")
    status: IntakeItemStatus = F(description="What became of it.")
    replayed: bool = F(description="True when an earlier send stored it; this is that first result.")
    household: Household | None = F(description="The household registered, updated, concerned or duplicated.")
    complaint: Complaint | None = F(description="The complaint filed or referred.")
    referral: Referral | None = F(description="The referral proposed.")
    errors: list[IntakeError] = F(description="Why it was rejected or is in conflict.")


@strawberry.type(description="Result of `submitIntakeBatch`.")
class SubmitIntakeBatchPayload:
    results: list[IntakeItemResult] = F(description="One per item, in order.")
    errors: list[IntakeError] = F(description="Why the batch as a whole was refused (then `results` is empty).")
