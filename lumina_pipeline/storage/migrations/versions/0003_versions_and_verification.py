"""Record which analysis version read each file, and when its checksum was last verified

Revision ID: 0003
Revises: 0002
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("images", sa.Column("analysis_version", sa.Text(), nullable=True))
    op.add_column("images", sa.Column("verified_at", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    op.drop_column("images", "verified_at")
    op.drop_column("images", "analysis_version")
