"""The domain's vocabularies as GraphQL enums, each value described for front-end developers."""

from __future__ import annotations

import strawberry

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

strawberry.enum(
    Role, description="What a staff account or partner key may do.")
strawberry.enum(
    RegionLevel, description="Level of a Kemendagri region code.")
strawberry.enum(
    DtksStatus,
    description="Whether the household is in the national welfare registry (DTKS): registered, not registered, "
    "or proposed for registration.",
)
strawberry.enum(
    Sex, description="Sex as recorded on the family card.")
strawberry.enum(
    Relation, description="Relation of a member to the head of the household.")
strawberry.enum(
    NikStatus,
    description="VALID: a checked 16-digit NIK. PLACEHOLDER: the registry's code for a person without a NIK "
    "(one repeated digit); it identifies nobody and is never deduplicated.",
)
strawberry.enum(
    Sector, description="Service sector of a complaint or program.")
strawberry.enum(
    ComplaintKind, description="Question, suggestion or complaint.")
strawberry.enum(
    Channel, description="How the complaint reached the service.")
strawberry.enum(
    Priority, description="Urgency set at intake.")
strawberry.enum(
    ComplaintStatus,
    description="NEW -> VERIFIED -> IN_PROGRESS -> REFERRED -> RESOLVED; RETURNED (to the facilitator for "
    "correction, then NEW again); REJECTED; RESOLVED and REJECTED can be reopened.",
)
strawberry.enum(
    SlaState,
    description="ON_TRACK; AT_RISK when under 25% of the service-level time is left; BREACHED when past due; "
    "CLOSED for resolved and rejected complaints.",
)
strawberry.enum(
    ReferralStatus,
    description="DRAFT -> SENT -> ACCEPTED -> COMPLETED; REJECTED by the receiving agency (with a reason); "
    "REVOKED by the sender.",
)

__all__ = [
    "Channel",
    "ComplaintKind",
    "ComplaintStatus",
    "DtksStatus",
    "NikStatus",
    "Priority",
    "ReferralStatus",
    "RegionLevel",
    "Relation",
    "Role",
    "Sector",
    "Sex",
    "SlaState",
]
