"""The domain's vocabularies as GraphQL enums, each type and value described for front-end developers.

The enums themselves live in :mod:`domain.enums` (the database CHECK constraints come from them);
here they are registered with strawberry and given their descriptions.
"""

from __future__ import annotations

from enum import Enum

import strawberry
from strawberry.types.enum import StrawberryEnumDefinition

from domain.enums import (
    Channel,
    ComplaintKind,
    ComplaintStatus,
    DtksStatus,
    NikStatus,
    Priority,
    ReferralStatus,
    RegionLevel,
    Relation,
    Role,
    Sector,
    Sex,
    SlaState,
)
from domain.events import EventKind


def describe(cls: type[Enum], description: str, values: dict[str, str]) -> None:
    """Register ``cls`` as a GraphQL enum with a description for the type and for every value."""
    strawberry.enum(cls, description=description)
    definition: StrawberryEnumDefinition = cls.__strawberry_definition__  # type: ignore[attr-defined]
    missing = {v.name for v in definition.values} - set(values)
    if missing:
        raise RuntimeError(f"{cls.__name__}: no description for {sorted(missing)}")
    for value in definition.values:
        value.description = values[value.name]


describe(Role, "What a staff account or partner key may do.", {
    "FACILITATOR": "Registers households, files complaints, proposes referrals in the villages they cover.",
    "PUSKESOS_OFFICER": "Walk-in intake at a village service post; handles and refers cases.",
    "SUPERVISOR": "Verifies or returns intake, reassigns cases, watches workload in their kecamatan.",
    "MANAGER": "Everything a supervisor can, district-wide.",
    "PARTNER": "An integration partner: read-only, personal data masked.",
    "ADMIN": "Users, keys and programs, nationally.",
})
describe(RegionLevel, "Level of a Kemendagri region code.", {
    "PROVINCE": "Province, e.g. `12`.",
    "KABUPATEN": "Kabupaten or kota, e.g. `12.74`.",
    "KECAMATAN": "Kecamatan, e.g. `12.74.01`.",
    "DESA": "Desa or kelurahan, e.g. `12.74.01.1001`.",
})
describe(DtksStatus, "Whether the household is in the national welfare registry (DTKS).", {
    "REGISTERED": "In the registry.",
    "NOT_REGISTERED": "Not in the registry.",
    "PROPOSED": "Proposed for registration at the next update.",
})
describe(Sex, "Sex as recorded on the family card.", {"MALE": "Male (laki-laki).", "FEMALE": "Female (perempuan)."})
describe(Relation, "Relation of a member to the head of the household.", {
    "HEAD": "Head of the household (kepala keluarga).",
    "SPOUSE": "Wife or husband.",
    "CHILD": "Child.",
    "CHILD_IN_LAW": "Son- or daughter-in-law.",
    "GRANDCHILD": "Grandchild.",
    "PARENT": "Parent.",
    "PARENT_IN_LAW": "Parent-in-law.",
    "OTHER_RELATIVE": "Another relative.",
    "OTHER": "Not related (e.g. a household helper).",
})
describe(NikStatus, "Whether a member's NIK identifies them.", {
    "VALID": "A 16-digit NIK that passed every check.",
    "PLACEHOLDER": "The registry's code for a person without a NIK (one repeated digit): identifies nobody and "
                   "is never deduplicated.",
})
describe(Sector, "Service sector of a complaint or program.", {
    "HEALTH": "Health, e.g. PBI-JK/KIS health insurance.",
    "EDUCATION": "Education, e.g. KIP school aid.",
    "PKH": "Program Keluarga Harapan conditional cash transfer.",
    "FOOD": "Food aid, e.g. BPNT/Sembako.",
    "ENERGY": "Energy, e.g. electricity subsidy.",
    "AGRICULTURE": "Agriculture.",
    "FISHERIES": "Fisheries.",
    "HOUSING": "Housing, e.g. RTLH house repair.",
    "CIVIL_REGISTRATION": "Civil registration: NIK, family card, birth certificate.",
    "SOCIAL_REHABILITATION": "Social rehabilitation (ATENSI and similar).",
    "OTHER": "Anything else.",
})
describe(ComplaintKind, "Question, suggestion or complaint.", {
    "QUESTION": "A question (pertanyaan).",
    "SUGGESTION": "A suggestion (saran).",
    "COMPLAINT": "A complaint (keluhan).",
})
describe(Channel, "How the complaint reached the service.", {
    "FACILITATOR_VISIT": "A facilitator's home visit.",
    "PUSKESOS_WALK_IN": "Walk-in at a village Puskesos post.",
    "DISTRICT_FRONT_OFFICE": "The district social office's front desk.",
    "HOTLINE": "Phone or messaging hotline.",
})
describe(Priority, "Urgency set at intake.", {
    "LOW": "Can wait.", "NORMAL": "Usual handling.", "HIGH": "Handle before normal cases.",
    "URGENT": "A person is at risk: handle at once.",
})
describe(ComplaintStatus, "Where a complaint is in its status machine.", {
    "NEW": "Filed, waiting for verification.",
    "RETURNED": "Sent back to the facilitator for correction; resubmitting makes it NEW again.",
    "VERIFIED": "Verified by a supervisor.",
    "IN_PROGRESS": "Being handled by its assignee.",
    "REFERRED": "Referred to at least one program.",
    "RESOLVED": "Closed with a decision; can be reopened.",
    "REJECTED": "Closed as not actionable, with a reason; can be reopened.",
})
describe(SlaState, "Service-level state of a complaint.", {
    "ON_TRACK": "More than 25% of the service-level time is left.",
    "AT_RISK": "Under 25% of the service-level time is left.",
    "BREACHED": "Past its due time.",
    "CLOSED": "Resolved or rejected.",
})
describe(ReferralStatus, "Where a referral is in its status machine.", {
    "DRAFT": "Proposed, not yet sent.",
    "SENT": "Sent to the receiving agency.",
    "ACCEPTED": "Accepted by the receiving agency.",
    "COMPLETED": "Done, with its outcome recorded.",
    "REJECTED": "Refused by the receiving agency, with a reason.",
    "REVOKED": "Withdrawn by the sender.",
})
describe(EventKind, "What a case event records.", {
    "HOUSEHOLD_REGISTERED": "A household was registered.",
    "HOUSEHOLD_UPDATED": "A household's data changed.",
    "MEMBER_ADDED": "A member was added to a household.",
    "COMPLAINT_FILED": "A complaint was filed.",
    "COMPLAINT_VERIFIED": "A complaint was verified.",
    "COMPLAINT_RETURNED": "A complaint was returned for correction.",
    "COMPLAINT_RESUBMITTED": "A returned complaint was resubmitted.",
    "COMPLAINT_REJECTED": "A complaint was rejected.",
    "COMPLAINT_STARTED": "The assignee took a complaint up.",
    "COMPLAINT_REFERRED": "A complaint's first referral was sent.",
    "COMPLAINT_RESOLVED": "A complaint was resolved.",
    "COMPLAINT_REOPENED": "A closed complaint was reopened.",
    "COMPLAINT_REASSIGNED": "A complaint moved to another assignee.",
    "REFERRAL_CREATED": "A referral was proposed.",
    "REFERRAL_SENT": "A referral was sent.",
    "REFERRAL_ACCEPTED": "A referral was accepted.",
    "REFERRAL_REJECTED": "A referral was rejected.",
    "REFERRAL_REVOKED": "A referral was revoked.",
    "REFERRAL_COMPLETED": "A referral was completed.",
})

__all__ = [
    "Channel", "ComplaintKind", "ComplaintStatus", "DtksStatus", "EventKind", "NikStatus", "Priority",
    "ReferralStatus", "RegionLevel", "Relation", "Role", "Sector", "SlaState", "Sex",
]
