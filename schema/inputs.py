"""Input objects of the mutations and filters."""

from __future__ import annotations

import datetime as dt

import strawberry
from strawberry.scalars import JSON

from schema.enums import (
    Channel,
    ComplaintKind,
    ComplaintStatus,
    DtksStatus,
    EventKind,
    Priority,
    ReferralStatus,
    Relation,
    Sector,
    Sex,
    SlaState,
)

F = strawberry.field


@strawberry.input(description="A member to register.")
class MemberInput:
    name: str = F(description="Full name as on the family card.")
    sex: Sex = F(description="Sex as on the family card.")
    birth_date: dt.date = F(description="Date of birth; must match the NIK's date digits.")
    relation: Relation = F(description="Relation to the head of the household.")
    nik: str | None = F(default=None, description="16-digit NIK, or the registry's placeholder for people without "
                        "one (one repeated digit). Spaces, dots and dashes are ignored.")
    nik_from_other_region: bool = F(default=False, description="Set when the NIK was issued outside the "
                                    "household's kecamatan (people keep their NIK when they move).")
    family_card_index: int | None = F(default=None, description="Index in `familyCards` of the member's card "
                                      "(default: the first).")
    education: str | None = F(default=None, description="Highest education completed.")
    occupation: str | None = F(default=None, description="Main occupation.")
    disability: str | None = F(default=None, description="Disability, if any.")
    chronic_illness: str | None = F(default=None, description="Chronic illness, if any.")
    programs: list[str] = F(default_factory=list, description="Program codes received (PKH, BPNT, PBI-JK, KIP...).")


@strawberry.input(description="A household to register with its family cards and members.")
class RegisterHouseholdInput:
    idempotency_key: str | None = F(default=None, description="Client-generated key (e.g. a UUID); sending the "
                                    "same key again returns the first result instead of registering twice.")
    region_code: str = F(description="Kemendagri code of the desa/kelurahan, e.g. `12.74.01.1001`.")
    address: str = F(description="Street address.")
    rt: str | None = F(default=None, description="Rukun tetangga (up to 3 digits).")
    rw: str | None = F(default=None, description="Rukun warga (up to 3 digits).")
    latitude: float | None = F(default=None, description="GPS latitude.")
    longitude: float | None = F(default=None, description="GPS longitude.")
    dtks_status: DtksStatus = F(default=DtksStatus.NOT_REGISTERED, description="Status in the welfare registry.")
    indicators: JSON | None = F(default=None, description="Poverty indicators keyed in snake_case.")
    family_cards: list[str] = F(default_factory=list, description="Family card numbers (No. KK), 16 digits each.")
    members: list[MemberInput] = F(description="Members; exactly one is the head.")


@strawberry.input(description="Changes to a household; omitted fields stay as they are.")
class UpdateHouseholdInput:
    id: strawberry.ID = F(description="Global id of the household.")
    expected_version: int = F(description="The version you last read; a different current version is a conflict.")
    address: str | None = F(default=None, description="New street address.")
    rt: str | None = F(default=None, description="New RT.")
    rw: str | None = F(default=None, description="New RW.")
    latitude: float | None = F(default=None, description="New GPS latitude.")
    longitude: float | None = F(default=None, description="New GPS longitude.")
    dtks_status: DtksStatus | None = F(default=None, description="New welfare-registry status.")
    indicators: JSON | None = F(default=None, description="Indicators to set (merged into the existing ones).")


@strawberry.input(description="A member to add to a registered household.")
class AddMemberInput:
    idempotency_key: str | None = F(default=None, description="Client-generated key; a replay returns the first "
                                    "result.")
    household_id: strawberry.ID = F(description="Global id of the household.")
    member: MemberInput = F(description="The member.")


@strawberry.input(description="A complaint to file for a household.")
class FileComplaintInput:
    idempotency_key: str | None = F(default=None, description="Client-generated key; a replay returns the first "
                                    "result.")
    household_id: strawberry.ID = F(description="Global id of the household.")
    member_id: strawberry.ID | None = F(default=None, description="Global id of the member concerned, if one.")
    kind: ComplaintKind = F(default=ComplaintKind.COMPLAINT, description="Question, suggestion or complaint.")
    sector: Sector = F(description="Sector concerned.")
    program_id: strawberry.ID | None = F(default=None, description="Program concerned; sets the service-level time.")
    description: str = F(description="What the household reports (up to 4000 characters).")
    channel: Channel = F(default=Channel.FACILITATOR_VISIT, description="How it reached the service.")
    priority: Priority = F(default=Priority.NORMAL, description="Urgency.")
    assignee_id: strawberry.ID | None = F(default=None, description="Who should handle it (default: the filing "
                                          "facilitator or officer).")
    reported_at: dt.datetime | None = F(default=None, description="When the household reported it, for intake "
                                        "collected offline; starts the service-level clock.")


@strawberry.input(description="A change of a complaint's status.")
class ComplaintTransitionInput:
    id: strawberry.ID = F(description="Global id of the complaint.")
    expected_version: int = F(description="The version you last read; a different current version is a conflict.")
    reason: str | None = F(default=None, description="Why: required to return, reject (it is recorded as the "
                           "decision) and reopen; an optional note when verifying.")


@strawberry.input(description="Resolve a complaint, recording the decision.")
class ResolveComplaintInput:
    id: strawberry.ID = F(description="Global id of the complaint.")
    expected_version: int = F(description="The version you last read.")
    decision: str = F(description="What was decided and done for the household.")


@strawberry.input(description="Resubmit a returned complaint after correcting it.")
class ResubmitComplaintInput:
    id: strawberry.ID = F(description="Global id of the complaint.")
    expected_version: int = F(description="The version you last read.")
    description: str | None = F(default=None, description="The corrected description, if it changed.")


@strawberry.input(description="Move a complaint to another facilitator or officer.")
class ReassignComplaintInput:
    id: strawberry.ID = F(description="Global id of the complaint.")
    expected_version: int = F(description="The version you last read.")
    assignee_id: strawberry.ID = F(description="Global id of the new assignee.")
    reason: str = F(description="Why the case moves.")


@strawberry.input(description="One complaint of a bulk reassignment.")
class BulkReassignItem:
    id: strawberry.ID = F(description="Global id of the complaint.")
    expected_version: int = F(description="The version you last read.")


@strawberry.input(description="Move many complaints to one assignee: all of them, or none if any fails.")
class BulkReassignComplaintsInput:
    complaints: list[BulkReassignItem] = F(description="The complaints (1 to 500).")
    assignee_id: strawberry.ID = F(description="Global id of the new assignee.")
    reason: str = F(description="Why the cases move.")


@strawberry.input(description="Propose a referral of a complaint to a program (created as DRAFT).")
class CreateReferralInput:
    complaint_id: strawberry.ID = F(description="Global id of the complaint.")
    program_id: strawberry.ID = F(description="Global id of the program.")
    consent_given: bool = F(description="Whether the household consented.")
    consent_override_reason: str | None = F(default=None, description="Why it may be sent without consent.")
    receiving_agency: str | None = F(default=None, description="Receiving agency (default: the program's owner).")
    note: str | None = F(default=None, description="Note for the receiving agency.")


@strawberry.input(description="A change of a referral's status.")
class ReferralTransitionInput:
    id: strawberry.ID = F(description="Global id of the referral.")
    expected_version: int = F(description="The version you last read.")
    reason: str | None = F(default=None, description="Why: required to reject or revoke.")


@strawberry.input(description="Complete an accepted referral, recording its outcome.")
class CompleteReferralInput:
    id: strawberry.ID = F(description="Global id of the referral.")
    expected_version: int = F(description="The version you last read.")
    outcome: str = F(description="What the receiving agency did for the household.")


@strawberry.input(description="Filter for `complaints`; all given conditions must hold.")
class ComplaintFilter:
    region_code: str | None = F(default=None, description="Only this region's subtree (within your scope).")
    status: list[ComplaintStatus] | None = F(default=None, description="Any of these statuses.")
    sector: list[Sector] | None = F(default=None, description="Any of these sectors.")
    kind: list[ComplaintKind] | None = F(default=None, description="Any of these kinds.")
    priority: list[Priority] | None = F(default=None, description="Any of these priorities.")
    sla_state: list[SlaState] | None = F(default=None, description="Any of these SLA states.")
    assignee_id: strawberry.ID | None = F(default=None, description="Held by this staff member.")
    unassigned: bool | None = F(default=None, description="True: nobody holds them; false: somebody does.")
    household_id: strawberry.ID | None = F(default=None, description="Of this household.")
    updated_after: dt.datetime | None = F(default=None, description="Changed after this time.")
    created_after: dt.datetime | None = F(default=None, description="Filed at or after this time.")
    created_before: dt.datetime | None = F(default=None, description="Filed before this time.")


@strawberry.input(description="Filter for `households`.")
class HouseholdFilter:
    region_code: str | None = F(default=None, description="Only this region's subtree (within your scope).")
    dtks_status: DtksStatus | None = F(default=None, description="Only this registry status.")
    updated_after: dt.datetime | None = F(default=None, description="Changed after this time.")
    nik: str | None = F(default=None, description="Households with a member of exactly this NIK (roles with the "
                        "personal-data grant only; the search is audited).")


@strawberry.input(description="Filter for `referrals`.")
class ReferralFilter:
    region_code: str | None = F(default=None, description="Only this region's subtree (within your scope).")
    status: list[ReferralStatus] | None = F(default=None, description="Any of these statuses.")
    program_id: strawberry.ID | None = F(default=None, description="To this program.")
    complaint_id: strawberry.ID | None = F(default=None, description="Of this complaint.")
    updated_after: dt.datetime | None = F(default=None, description="Changed after this time.")


@strawberry.input(description="Filter for `caseEvents`; all given conditions must hold.")
class CaseEventFilter:
    region_code: str | None = F(default=None, description="Only this region's subtree (within your scope).")
    kinds: list[EventKind] | None = F(default=None, description="Any of these kinds.")
    complaint_id: strawberry.ID | None = F(default=None, description="Only this complaint's events.")
    household_id: strawberry.ID | None = F(default=None, description="Only this household's events.")
