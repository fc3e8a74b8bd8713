"""Closed vocabularies of the domain. Stored as text with CHECK constraints in PostgreSQL."""

from __future__ import annotations

from enum import StrEnum


class Role(StrEnum):
    FACILITATOR = "FACILITATOR"
    PUSKESOS_OFFICER = "PUSKESOS_OFFICER"
    SUPERVISOR = "SUPERVISOR"
    MANAGER = "MANAGER"
    PARTNER = "PARTNER"
    ADMIN = "ADMIN"


class RegionLevel(StrEnum):
    PROVINCE = "PROVINCE"
    KABUPATEN = "KABUPATEN"
    KECAMATAN = "KECAMATAN"
    DESA = "DESA"


class DtksStatus(StrEnum):
    REGISTERED = "REGISTERED"
    NOT_REGISTERED = "NOT_REGISTERED"
    PROPOSED = "PROPOSED"


class Sex(StrEnum):
    MALE = "MALE"
    FEMALE = "FEMALE"


class Relation(StrEnum):
    HEAD = "HEAD"
    SPOUSE = "SPOUSE"
    CHILD = "CHILD"
    CHILD_IN_LAW = "CHILD_IN_LAW"
    GRANDCHILD = "GRANDCHILD"
    PARENT = "PARENT"
    PARENT_IN_LAW = "PARENT_IN_LAW"
    OTHER_RELATIVE = "OTHER_RELATIVE"
    OTHER = "OTHER"


class NikStatus(StrEnum):
    VALID = "VALID"
    PLACEHOLDER = "PLACEHOLDER"


class Sector(StrEnum):
    HEALTH = "HEALTH"
    EDUCATION = "EDUCATION"
    PKH = "PKH"
    FOOD = "FOOD"
    ENERGY = "ENERGY"
    AGRICULTURE = "AGRICULTURE"
    FISHERIES = "FISHERIES"
    HOUSING = "HOUSING"
    CIVIL_REGISTRATION = "CIVIL_REGISTRATION"
    SOCIAL_REHABILITATION = "SOCIAL_REHABILITATION"
    OTHER = "OTHER"


# Default service-level days by sector, used when a complaint names no program.
SECTOR_SLA_DAYS: dict[Sector, int] = {
    Sector.HEALTH: 3,
    Sector.EDUCATION: 14,
    Sector.PKH: 14,
    Sector.FOOD: 10,
    Sector.ENERGY: 14,
    Sector.AGRICULTURE: 21,
    Sector.FISHERIES: 21,
    Sector.HOUSING: 30,
    Sector.CIVIL_REGISTRATION: 7,
    Sector.SOCIAL_REHABILITATION: 5,
    Sector.OTHER: 14,
}


class ComplaintKind(StrEnum):
    QUESTION = "QUESTION"
    SUGGESTION = "SUGGESTION"
    COMPLAINT = "COMPLAINT"


class Channel(StrEnum):
    FACILITATOR_VISIT = "FACILITATOR_VISIT"
    PUSKESOS_WALK_IN = "PUSKESOS_WALK_IN"
    DISTRICT_FRONT_OFFICE = "DISTRICT_FRONT_OFFICE"
    HOTLINE = "HOTLINE"


class Priority(StrEnum):
    LOW = "LOW"
    NORMAL = "NORMAL"
    HIGH = "HIGH"
    URGENT = "URGENT"


class ComplaintStatus(StrEnum):
    NEW = "NEW"
    RETURNED = "RETURNED"
    VERIFIED = "VERIFIED"
    IN_PROGRESS = "IN_PROGRESS"
    REFERRED = "REFERRED"
    RESOLVED = "RESOLVED"
    REJECTED = "REJECTED"


OPEN_COMPLAINT_STATUSES = frozenset(
    {
        ComplaintStatus.NEW,
        ComplaintStatus.RETURNED,
        ComplaintStatus.VERIFIED,
        ComplaintStatus.IN_PROGRESS,
        ComplaintStatus.REFERRED,
    }
)


class SlaState(StrEnum):
    ON_TRACK = "ON_TRACK"
    AT_RISK = "AT_RISK"
    BREACHED = "BREACHED"
    CLOSED = "CLOSED"


class ReferralStatus(StrEnum):
    DRAFT = "DRAFT"
    SENT = "SENT"
    ACCEPTED = "ACCEPTED"
    COMPLETED = "COMPLETED"
    REJECTED = "REJECTED"
    REVOKED = "REVOKED"


FINAL_REFERRAL_STATUSES = frozenset({ReferralStatus.COMPLETED, ReferralStatus.REJECTED, ReferralStatus.REVOKED})


def check_constraint(column: str, values: type[StrEnum]) -> str:
    """SQL for a CHECK constraint that holds ``column`` to the members of ``values``."""
    allowed = ", ".join(f"'{v.value}'" for v in values)
    return f"{column} IN ({allowed})"
