"""Allow the service role (machine accounts of workers outside the cluster).

Revision ID: 0002
Revises: 0001
"""

from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.drop_constraint("ck_users_role", "users", schema="auth", type_="check")
    op.create_check_constraint(
        "ck_users_role", "users", "role IN ('admin', 'editor', 'viewer', 'service')", schema="auth"
    )


def downgrade() -> None:
    op.drop_constraint("ck_users_role", "users", schema="auth", type_="check")
    op.create_check_constraint("ck_users_role", "users", "role IN ('admin', 'editor', 'viewer')", schema="auth")
