"""Every SQLAlchemy model, imported in one place so metadata and alembic see them all."""

from domain.base import Base
from domain.complaints.models import Assignment, Complaint
from domain.events import AuditEntry, CaseEvent, IdempotencyKey
from domain.households.models import FamilyCard, Household, Member
from domain.programs import Program
from domain.referrals.models import Referral
from domain.regions import Region
from domain.staff.models import ApiKey, Staff

__all__ = [
    "ApiKey", "Assignment", "AuditEntry", "Base", "CaseEvent", "Complaint", "FamilyCard", "Household",
    "IdempotencyKey", "Member", "Program", "Referral", "Region", "Staff",
]
