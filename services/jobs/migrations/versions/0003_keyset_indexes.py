"""Indexes for keyset pages of job lists: (project, status, created, id) and (created, id).

Revision ID: 0003
Revises: 0002
"""

from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index(
        "ix_jobs_project_status_created", "jobs", ["project_id", "status", "created_at", "id"], schema="jobs"
    )
    op.create_index("ix_jobs_created", "jobs", ["created_at", "id"], schema="jobs")


def downgrade() -> None:
    op.drop_index("ix_jobs_created", table_name="jobs", schema="jobs")
    op.drop_index("ix_jobs_project_status_created", table_name="jobs", schema="jobs")
