"""workload board indexes

The board counts a region's open complaints per assignee (open, at risk, breached, oldest) and, apart, the
complaints filed today. ``ix_complaints_open_region`` holds only open complaints, keyed by region (subtree
prefix ranges, hence ``text_pattern_ops``) and assignee, with what the counts read included, so the open
aggregate is an index-only scan over the region's open cases instead of a heap scan over all its cases.
``ix_complaints_created_region`` serves "new today": complaints filed since local midnight, nationally, with
the region checked inside the index, so only the region's own new complaints are visited (the busiest
intake elsewhere in the country no longer costs heap visits).
``ix_staff_region_code_pattern`` finds a region's staff by subtree prefix; the plain ``ix_staff_region_code``
cannot serve ``LIKE`` unless the database collation is "C", so the board read the whole staff table.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-02
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index(
        "ix_complaints_open_region",
        "complaints",
        ["region_code", "assignee_id"],
        unique=False,
        postgresql_ops={"region_code": "text_pattern_ops"},
        postgresql_include=["sla_due_at", "sla_started_at", "created_at", "status"],
        postgresql_where=sa.text("status IN ('NEW', 'RETURNED', 'VERIFIED', 'IN_PROGRESS', 'REFERRED')"),
    )
    op.create_index("ix_complaints_created_region", "complaints", ["created_at", "region_code"], unique=False,
                    postgresql_ops={"region_code": "text_pattern_ops"}, postgresql_include=["assignee_id"])
    op.create_index("ix_staff_region_code_pattern", "staff", ["region_code"], unique=False,
                    postgresql_ops={"region_code": "text_pattern_ops"})


def downgrade() -> None:
    op.drop_index("ix_staff_region_code_pattern", table_name="staff")
    op.drop_index("ix_complaints_created_region", table_name="complaints")
    op.drop_index("ix_complaints_open_region", table_name="complaints")
