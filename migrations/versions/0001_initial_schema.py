"""initial schema

Revision ID: 0001
Revises:
Create Date: 2026-11-23
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "case_events",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("occurred_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("kind", sa.String(length=40), nullable=False),
        sa.Column("region_code", sa.String(length=13), nullable=False),
        sa.Column("household_id", sa.BigInteger(), nullable=True),
        sa.Column("complaint_id", sa.BigInteger(), nullable=True),
        sa.Column("referral_id", sa.BigInteger(), nullable=True),
        sa.Column("actor_id", sa.BigInteger(), nullable=True),
        sa.Column(
            "data",
            postgresql.JSONB(astext_type=sa.Text()),
            server_default=sa.text("'{}'::jsonb"),
            nullable=False,
        ),
        sa.CheckConstraint(
            "kind IN ('HOUSEHOLD_REGISTERED', 'HOUSEHOLD_UPDATED', 'MEMBER_ADDED', 'COMPLAINT_FILED', 'COMPLAINT_VERIFIED', 'COMPLAINT_RETURNED', 'COMPLAINT_RESUBMITTED', 'COMPLAINT_REJECTED', 'COMPLAINT_STARTED', 'COMPLAINT_REFERRED', 'COMPLAINT_RESOLVED', 'COMPLAINT_REOPENED', 'COMPLAINT_REASSIGNED', 'REFERRAL_CREATED', 'REFERRAL_SENT', 'REFERRAL_ACCEPTED', 'REFERRAL_REJECTED', 'REFERRAL_REVOKED', 'REFERRAL_COMPLETED')",
            name=op.f("ck_case_events_kind"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_case_events")),
    )
    op.create_index("ix_case_events_complaint", "case_events", ["complaint_id", "id"], unique=False)
    op.create_index("ix_case_events_household", "case_events", ["household_id", "id"], unique=False)
    op.execute(
        """
        CREATE FUNCTION case_events_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            RAISE EXCEPTION 'case_events is append-only';
        END $$
        """
    )
    op.execute(
        "CREATE TRIGGER case_events_append_only BEFORE UPDATE OR DELETE ON case_events"
        " FOR EACH ROW EXECUTE FUNCTION case_events_append_only()"
    )
    op.create_index(
        "ix_case_events_region_code_pattern",
        "case_events",
        ["region_code", "id"],
        unique=False,
        postgresql_ops={"region_code": "text_pattern_ops"},
    )
    op.create_table(
        "programs",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("code", sa.String(length=40), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("sector", sa.String(length=30), nullable=False),
        sa.Column("owner_agency", sa.String(length=200), nullable=False),
        sa.Column("sla_days", sa.Integer(), nullable=False),
        sa.Column("active", sa.Boolean(), server_default=sa.text("true"), nullable=False),
        sa.CheckConstraint(
            "sector IN ('HEALTH', 'EDUCATION', 'PKH', 'FOOD', 'ENERGY', 'AGRICULTURE', 'FISHERIES', 'HOUSING', 'CIVIL_REGISTRATION', 'SOCIAL_REHABILITATION', 'OTHER')",
            name=op.f("ck_programs_sector"),
        ),
        sa.CheckConstraint("sla_days BETWEEN 1 AND 365", name=op.f("ck_programs_sla_days")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_programs")),
        sa.UniqueConstraint("code", name=op.f("uq_programs_code")),
    )
    op.create_table(
        "regions",
        sa.Column("code", sa.String(length=13), nullable=False),
        sa.Column("name", sa.String(length=120), nullable=False),
        sa.Column("level", sa.String(length=12), nullable=False),
        sa.Column("parent_code", sa.String(length=13), nullable=True),
        sa.CheckConstraint(
            "code ~ '^\\d{2}(\\.\\d{2}(\\.\\d{2}(\\.\\d{4})?)?)?$'", name=op.f("ck_regions_code_format")
        ),
        sa.CheckConstraint(
            "level IN ('PROVINCE', 'KABUPATEN', 'KECAMATAN', 'DESA')", name=op.f("ck_regions_level")
        ),
        sa.ForeignKeyConstraint(
            ["parent_code"], ["regions.code"], name=op.f("fk_regions_parent_code_regions")
        ),
        sa.PrimaryKeyConstraint("code", name=op.f("pk_regions")),
    )
    op.create_index(
        "ix_regions_code_pattern",
        "regions",
        ["code"],
        unique=False,
        postgresql_ops={"code": "text_pattern_ops"},
    )
    op.create_index(op.f("ix_regions_parent_code"), "regions", ["parent_code"], unique=False)
    op.create_table(
        "staff",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("username", sa.String(length=80), nullable=False),
        sa.Column("password_hash", sa.String(length=200), nullable=False),
        sa.Column("full_name", sa.String(length=200), nullable=False),
        sa.Column("role", sa.String(length=20), nullable=False),
        sa.Column("region_code", sa.String(length=13), nullable=True),
        sa.Column("extra_region_codes", postgresql.ARRAY(sa.String(length=13)), server_default=sa.text("'{}'"), nullable=False),
        sa.Column("supervisor_id", sa.BigInteger(), nullable=True),
        sa.Column("phone", sa.String(length=30), nullable=True),
        sa.Column("active", sa.Boolean(), server_default=sa.text("true"), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.CheckConstraint(
            "role IN ('FACILITATOR', 'PUSKESOS_OFFICER', 'SUPERVISOR', 'MANAGER', 'PARTNER', 'ADMIN')",
            name=op.f("ck_staff_role"),
        ),
        sa.ForeignKeyConstraint(["region_code"], ["regions.code"], name=op.f("fk_staff_region_code_regions")),
        sa.ForeignKeyConstraint(["supervisor_id"], ["staff.id"], name=op.f("fk_staff_supervisor_id_staff")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_staff")),
        sa.UniqueConstraint("username", name=op.f("uq_staff_username")),
    )
    op.create_index(op.f("ix_staff_region_code"), "staff", ["region_code"], unique=False)
    op.create_index(op.f("ix_staff_supervisor_id"), "staff", ["supervisor_id"], unique=False)
    op.create_table(
        "audit_log",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("actor_id", sa.BigInteger(), nullable=True),
        sa.Column("action", sa.String(length=60), nullable=False),
        sa.Column("entity_type", sa.String(length=30), nullable=False),
        sa.Column("entity_id", sa.BigInteger(), nullable=True),
        sa.Column(
            "detail",
            postgresql.JSONB(astext_type=sa.Text()),
            server_default=sa.text("'{}'::jsonb"),
            nullable=False,
        ),
        sa.Column("origin", sa.String(length=64), nullable=True),
        sa.ForeignKeyConstraint(["actor_id"], ["staff.id"], name=op.f("fk_audit_log_actor_id_staff")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_log")),
    )
    op.create_index(op.f("ix_audit_log_actor_id"), "audit_log", ["actor_id"], unique=False)
    op.create_index(op.f("ix_audit_log_at"), "audit_log", ["at"], unique=False)
    op.create_table(
        "households",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("region_code", sa.String(length=13), nullable=False),
        sa.Column("address", sa.String(length=300), nullable=False),
        sa.Column("rt", sa.String(length=3), nullable=True),
        sa.Column("rw", sa.String(length=3), nullable=True),
        sa.Column("latitude", sa.Float(), nullable=True),
        sa.Column("longitude", sa.Float(), nullable=True),
        sa.Column("dtks_status", sa.String(length=20), nullable=False),
        sa.Column(
            "indicators",
            postgresql.JSONB(astext_type=sa.Text()),
            server_default=sa.text("'{}'::jsonb"),
            nullable=False,
        ),
        sa.Column("registered_by_id", sa.BigInteger(), nullable=True),
        sa.Column("version", sa.Integer(), server_default=sa.text("1"), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.CheckConstraint(
            "dtks_status IN ('REGISTERED', 'NOT_REGISTERED', 'PROPOSED')",
            name=op.f("ck_households_dtks_status"),
        ),
        sa.CheckConstraint(
            "latitude IS NULL OR latitude BETWEEN -11 AND 6", name=op.f("ck_households_latitude")
        ),
        sa.CheckConstraint(
            "longitude IS NULL OR longitude BETWEEN 94 AND 142", name=op.f("ck_households_longitude")
        ),
        sa.CheckConstraint("version >= 1", name=op.f("ck_households_version")),
        sa.ForeignKeyConstraint(
            ["region_code"], ["regions.code"], name=op.f("fk_households_region_code_regions")
        ),
        sa.ForeignKeyConstraint(
            ["registered_by_id"], ["staff.id"], name=op.f("fk_households_registered_by_id_staff")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_households")),
    )
    op.create_index(
        "ix_households_region_code_pattern",
        "households",
        ["region_code", "id"],
        unique=False,
        postgresql_ops={"region_code": "text_pattern_ops"},
    )
    op.create_index("ix_households_updated", "households", ["updated_at", "id"], unique=False)
    op.create_table(
        "idempotency_keys",
        sa.Column("actor_id", sa.BigInteger(), nullable=False),
        sa.Column("key", sa.String(length=100), nullable=False),
        sa.Column("operation", sa.String(length=40), nullable=False),
        sa.Column("result_id", sa.BigInteger(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("attempts", sa.Integer(), server_default=sa.text("1"), nullable=False),
        sa.ForeignKeyConstraint(["actor_id"], ["staff.id"], name=op.f("fk_idempotency_keys_actor_id_staff")),
        sa.PrimaryKeyConstraint("actor_id", "key", name=op.f("pk_idempotency_keys")),
    )
    op.create_table(
        "family_cards",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("household_id", sa.BigInteger(), nullable=False),
        sa.Column("number_hash", sa.LargeBinary(), nullable=False),
        sa.Column("number_sealed", sa.LargeBinary(), nullable=False),
        sa.Column("number_masked", sa.String(length=16), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.ForeignKeyConstraint(
            ["household_id"],
            ["households.id"],
            name=op.f("fk_family_cards_household_id_households"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_family_cards")),
        sa.UniqueConstraint("number_hash", name=op.f("uq_family_cards_number_hash")),
    )
    op.create_index(op.f("ix_family_cards_household_id"), "family_cards", ["household_id"], unique=False)
    op.create_table(
        "members",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("household_id", sa.BigInteger(), nullable=False),
        sa.Column("family_card_id", sa.BigInteger(), nullable=True),
        sa.Column("nik_status", sa.String(length=12), nullable=False),
        sa.Column("nik_hash", sa.LargeBinary(), nullable=True),
        sa.Column("nik_sealed", sa.LargeBinary(), nullable=True),
        sa.Column("nik_masked", sa.String(length=16), nullable=True),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("sex", sa.String(length=6), nullable=False),
        sa.Column("birth_date", sa.Date(), nullable=False),
        sa.Column("relation", sa.String(length=20), nullable=False),
        sa.Column("education", sa.String(length=40), nullable=True),
        sa.Column("occupation", sa.String(length=80), nullable=True),
        sa.Column("disability", sa.Text(), nullable=True),
        sa.Column("chronic_illness", sa.Text(), nullable=True),
        sa.Column("programs", sa.ARRAY(sa.String(length=40)), server_default=sa.text("'{}'"), nullable=False),
        sa.Column("nik_from_other_region", sa.Boolean(), server_default=sa.text("false"), nullable=False),
        sa.Column("version", sa.Integer(), server_default=sa.text("1"), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.CheckConstraint(
            "(nik_status = 'VALID') = (nik_hash IS NOT NULL)", name=op.f("ck_members_nik_hash_when_valid")
        ),
        sa.CheckConstraint("nik_status IN ('VALID', 'PLACEHOLDER')", name=op.f("ck_members_nik_status")),
        sa.CheckConstraint(
            "relation IN ('HEAD', 'SPOUSE', 'CHILD', 'CHILD_IN_LAW', 'GRANDCHILD', 'PARENT', 'PARENT_IN_LAW', 'OTHER_RELATIVE', 'OTHER')",
            name=op.f("ck_members_relation"),
        ),
        sa.CheckConstraint("sex IN ('MALE', 'FEMALE')", name=op.f("ck_members_sex")),
        sa.CheckConstraint("version >= 1", name=op.f("ck_members_version")),
        sa.ForeignKeyConstraint(
            ["family_card_id"], ["family_cards.id"], name=op.f("fk_members_family_card_id_family_cards")
        ),
        sa.ForeignKeyConstraint(
            ["household_id"],
            ["households.id"],
            name=op.f("fk_members_household_id_households"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_members")),
    )
    op.create_index(op.f("ix_members_family_card_id"), "members", ["family_card_id"], unique=False)
    op.create_index(op.f("ix_members_household_id"), "members", ["household_id"], unique=False)
    op.create_index(
        "uq_members_nik_hash",
        "members",
        ["nik_hash"],
        unique=True,
        postgresql_where=sa.text("nik_hash IS NOT NULL"),
    )
    op.create_table(
        "complaints",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("household_id", sa.BigInteger(), nullable=False),
        sa.Column("member_id", sa.BigInteger(), nullable=True),
        sa.Column("region_code", sa.String(length=13), nullable=False),
        sa.Column("kind", sa.String(length=12), nullable=False),
        sa.Column("sector", sa.String(length=30), nullable=False),
        sa.Column("program_id", sa.BigInteger(), nullable=True),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("channel", sa.String(length=30), nullable=False),
        sa.Column("priority", sa.String(length=8), nullable=False),
        sa.Column("status", sa.String(length=12), nullable=False),
        sa.Column("assignee_id", sa.BigInteger(), nullable=True),
        sa.Column("filed_by_id", sa.BigInteger(), nullable=True),
        sa.Column("sla_started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("sla_due_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("decision", sa.Text(), nullable=True),
        sa.Column("status_reason", sa.Text(), nullable=True),
        sa.Column("closed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("reported_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("version", sa.Integer(), server_default=sa.text("1"), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.CheckConstraint(
            "channel IN ('FACILITATOR_VISIT', 'PUSKESOS_WALK_IN', 'DISTRICT_FRONT_OFFICE', 'HOTLINE')",
            name=op.f("ck_complaints_channel"),
        ),
        sa.CheckConstraint(
            "kind IN ('QUESTION', 'SUGGESTION', 'COMPLAINT')", name=op.f("ck_complaints_kind")
        ),
        sa.CheckConstraint(
            "priority IN ('LOW', 'NORMAL', 'HIGH', 'URGENT')", name=op.f("ck_complaints_priority")
        ),
        sa.CheckConstraint(
            "sector IN ('HEALTH', 'EDUCATION', 'PKH', 'FOOD', 'ENERGY', 'AGRICULTURE', 'FISHERIES', 'HOUSING', 'CIVIL_REGISTRATION', 'SOCIAL_REHABILITATION', 'OTHER')",
            name=op.f("ck_complaints_sector"),
        ),
        sa.CheckConstraint(
            "status IN ('NEW', 'RETURNED', 'VERIFIED', 'IN_PROGRESS', 'REFERRED', 'RESOLVED', 'REJECTED')",
            name=op.f("ck_complaints_status"),
        ),
        sa.CheckConstraint(
            "status NOT IN ('RESOLVED', 'REJECTED') OR decision IS NOT NULL",
            name=op.f("ck_complaints_closed_has_decision"),
        ),
        sa.CheckConstraint("sla_due_at > sla_started_at", name=op.f("ck_complaints_sla_window")),
        sa.CheckConstraint("version >= 1", name=op.f("ck_complaints_version")),
        sa.ForeignKeyConstraint(["assignee_id"], ["staff.id"], name=op.f("fk_complaints_assignee_id_staff")),
        sa.ForeignKeyConstraint(["filed_by_id"], ["staff.id"], name=op.f("fk_complaints_filed_by_id_staff")),
        sa.ForeignKeyConstraint(
            ["household_id"], ["households.id"], name=op.f("fk_complaints_household_id_households")
        ),
        sa.ForeignKeyConstraint(["member_id"], ["members.id"], name=op.f("fk_complaints_member_id_members")),
        sa.ForeignKeyConstraint(
            ["program_id"], ["programs.id"], name=op.f("fk_complaints_program_id_programs")
        ),
        sa.ForeignKeyConstraint(
            ["region_code"], ["regions.code"], name=op.f("fk_complaints_region_code_regions")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_complaints")),
    )
    op.create_index(
        "ix_complaints_assignee_open",
        "complaints",
        ["assignee_id", "sla_due_at"],
        unique=False,
        postgresql_where=sa.text("status IN ('NEW', 'RETURNED', 'VERIFIED', 'IN_PROGRESS', 'REFERRED')"),
    )
    op.create_index(op.f("ix_complaints_household_id"), "complaints", ["household_id"], unique=False)
    op.create_index(op.f("ix_complaints_member_id"), "complaints", ["member_id"], unique=False)
    op.create_index(
        "ix_complaints_region_code_pattern",
        "complaints",
        ["region_code", "id"],
        unique=False,
        postgresql_ops={"region_code": "text_pattern_ops"},
    )
    op.create_index("ix_complaints_status_id", "complaints", ["status", "id"], unique=False)
    op.create_index("ix_complaints_updated", "complaints", ["updated_at", "id"], unique=False)
    op.create_index("ix_complaints_created", "complaints", ["created_at", "id"], unique=False)
    op.create_index("ix_complaints_sla_due", "complaints", ["sla_due_at", "id"], unique=False)
    op.create_table(
        "assignments",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("complaint_id", sa.BigInteger(), nullable=False),
        sa.Column("from_staff_id", sa.BigInteger(), nullable=True),
        sa.Column("to_staff_id", sa.BigInteger(), nullable=False),
        sa.Column("by_staff_id", sa.BigInteger(), nullable=True),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.ForeignKeyConstraint(["by_staff_id"], ["staff.id"], name=op.f("fk_assignments_by_staff_id_staff")),
        sa.ForeignKeyConstraint(
            ["complaint_id"], ["complaints.id"], name=op.f("fk_assignments_complaint_id_complaints")
        ),
        sa.ForeignKeyConstraint(
            ["from_staff_id"], ["staff.id"], name=op.f("fk_assignments_from_staff_id_staff")
        ),
        sa.ForeignKeyConstraint(["to_staff_id"], ["staff.id"], name=op.f("fk_assignments_to_staff_id_staff")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_assignments")),
    )
    op.create_index(op.f("ix_assignments_complaint_id"), "assignments", ["complaint_id"], unique=False)
    op.create_table(
        "referrals",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("complaint_id", sa.BigInteger(), nullable=False),
        sa.Column("program_id", sa.BigInteger(), nullable=False),
        sa.Column("region_code", sa.String(length=13), nullable=False),
        sa.Column("receiving_agency", sa.String(length=200), nullable=False),
        sa.Column("note", sa.Text(), nullable=True),
        sa.Column("consent_given", sa.Boolean(), nullable=False),
        sa.Column("consent_override_reason", sa.Text(), nullable=True),
        sa.Column("status", sa.String(length=12), nullable=False),
        sa.Column("rejection_reason", sa.Text(), nullable=True),
        sa.Column("revocation_reason", sa.Text(), nullable=True),
        sa.Column("outcome", sa.Text(), nullable=True),
        sa.Column("created_by_id", sa.BigInteger(), nullable=True),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("responded_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("completed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("version", sa.Integer(), server_default=sa.text("1"), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.CheckConstraint(
            "status <> 'COMPLETED' OR outcome IS NOT NULL", name=op.f("ck_referrals_completed_has_outcome")
        ),
        sa.CheckConstraint(
            "status <> 'REJECTED' OR rejection_reason IS NOT NULL",
            name=op.f("ck_referrals_rejected_has_reason"),
        ),
        sa.CheckConstraint(
            "status = 'DRAFT' OR consent_given OR consent_override_reason IS NOT NULL",
            name=op.f("ck_referrals_consent_before_send"),
        ),
        sa.CheckConstraint(
            "status IN ('DRAFT', 'SENT', 'ACCEPTED', 'COMPLETED', 'REJECTED', 'REVOKED')",
            name=op.f("ck_referrals_status"),
        ),
        sa.CheckConstraint("version >= 1", name=op.f("ck_referrals_version")),
        sa.ForeignKeyConstraint(
            ["complaint_id"], ["complaints.id"], name=op.f("fk_referrals_complaint_id_complaints")
        ),
        sa.ForeignKeyConstraint(
            ["created_by_id"], ["staff.id"], name=op.f("fk_referrals_created_by_id_staff")
        ),
        sa.ForeignKeyConstraint(
            ["program_id"], ["programs.id"], name=op.f("fk_referrals_program_id_programs")
        ),
        sa.ForeignKeyConstraint(
            ["region_code"], ["regions.code"], name=op.f("fk_referrals_region_code_regions")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_referrals")),
    )
    op.create_index(op.f("ix_referrals_complaint_id"), "referrals", ["complaint_id"], unique=False)
    op.create_index(op.f("ix_referrals_region_code"), "referrals", ["region_code"], unique=False)


def downgrade() -> None:
    op.execute("DROP TRIGGER IF EXISTS case_events_append_only ON case_events")
    op.execute("DROP FUNCTION IF EXISTS case_events_append_only()")
    op.drop_index(op.f("ix_referrals_region_code"), table_name="referrals")
    op.drop_index(op.f("ix_referrals_complaint_id"), table_name="referrals")
    op.drop_table("referrals")
    op.drop_index(op.f("ix_assignments_complaint_id"), table_name="assignments")
    op.drop_table("assignments")
    op.drop_index("ix_complaints_updated", table_name="complaints")
    op.drop_index("ix_complaints_created", table_name="complaints")
    op.drop_index("ix_complaints_sla_due", table_name="complaints")
    op.drop_index("ix_complaints_status_id", table_name="complaints")
    op.drop_index(
        "ix_complaints_region_code_pattern",
        table_name="complaints",
        postgresql_ops={"region_code": "text_pattern_ops"},
    )
    op.drop_index(op.f("ix_complaints_member_id"), table_name="complaints")
    op.drop_index(op.f("ix_complaints_household_id"), table_name="complaints")
    op.drop_index(
        "ix_complaints_assignee_open",
        table_name="complaints",
        postgresql_where=sa.text("status IN ('NEW', 'RETURNED', 'VERIFIED', 'IN_PROGRESS', 'REFERRED')"),
    )
    op.drop_table("complaints")
    op.drop_index(
        "uq_members_nik_hash", table_name="members", postgresql_where=sa.text("nik_hash IS NOT NULL")
    )
    op.drop_index(op.f("ix_members_household_id"), table_name="members")
    op.drop_index(op.f("ix_members_family_card_id"), table_name="members")
    op.drop_table("members")
    op.drop_index(op.f("ix_family_cards_household_id"), table_name="family_cards")
    op.drop_table("family_cards")
    op.drop_table("idempotency_keys")
    op.drop_index("ix_households_updated", table_name="households")
    op.drop_index(
        "ix_households_region_code_pattern",
        table_name="households",
        postgresql_ops={"region_code": "text_pattern_ops"},
    )
    op.drop_table("households")
    op.drop_index(op.f("ix_audit_log_at"), table_name="audit_log")
    op.drop_index(op.f("ix_audit_log_actor_id"), table_name="audit_log")
    op.drop_table("audit_log")
    op.drop_index(op.f("ix_staff_supervisor_id"), table_name="staff")
    op.drop_index(op.f("ix_staff_region_code"), table_name="staff")
    op.drop_table("staff")
    op.drop_index(op.f("ix_regions_parent_code"), table_name="regions")
    op.drop_index(
        "ix_regions_code_pattern", table_name="regions", postgresql_ops={"code": "text_pattern_ops"}
    )
    op.drop_table("regions")
    op.drop_table("programs")
    op.drop_index(
        "ix_case_events_region_code_pattern",
        table_name="case_events",
        postgresql_ops={"region_code": "text_pattern_ops"},
    )
    op.drop_index("ix_case_events_household", table_name="case_events")
    op.drop_index("ix_case_events_complaint", table_name="case_events")
    op.drop_table("case_events")
