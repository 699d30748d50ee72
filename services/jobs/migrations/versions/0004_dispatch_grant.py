"""The dispatch grant of a job's current attempt: worker events must carry it.

Revision ID: 0004
Revises: 0003
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Jobs dispatched before this revision keep an empty grant, which their workers' grant-less events match
    # (transitions.holds_grant): an upgrade strands no job. Every attempt dispatched afterwards has one.
    op.add_column(
        "jobs",
        sa.Column("dispatch_grant", sa.String(length=64), nullable=False, server_default=""),
        schema="jobs",
    )


def downgrade() -> None:
    op.drop_column("jobs", "dispatch_grant", schema="jobs")
