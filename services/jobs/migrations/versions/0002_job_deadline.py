"""The deadline of a running job's current delivery, and the index the reaper reads it by.

Revision ID: 0002
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("jobs", sa.Column("deadline_at", sa.DateTime(timezone=True), nullable=True), schema="jobs")
    op.create_index(
        "ix_jobs_running_deadline",
        "jobs",
        ["deadline_at"],
        schema="jobs",
        postgresql_where=sa.text("status = 'RUNNING'"),
    )


def downgrade() -> None:
    op.drop_index("ix_jobs_running_deadline", table_name="jobs", schema="jobs")
    op.drop_column("jobs", "deadline_at", schema="jobs")
