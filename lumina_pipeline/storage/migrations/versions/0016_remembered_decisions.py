"""People's decisions on groups that dissolved, remembered by their members' checksums

Revision ID: 0016
Revises: 0015
"""

import sqlalchemy as sa
from alembic import op

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "remembered_decisions",
        sa.Column("id", sa.BigInteger(), sa.Identity(), nullable=False),
        sa.Column("catalog_id", sa.UUID(), nullable=False),
        sa.Column("grouping", sa.String(length=32), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("members", sa.Text(), nullable=False),
        sa.Column("reviewed", sa.Boolean(), nullable=False),
        sa.Column("chosen_id", sa.BigInteger(), nullable=True),
        sa.Column("chosen_checksum", sa.String(length=64), nullable=True),
        sa.ForeignKeyConstraint(["catalog_id"], ["catalogs.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_remembered_decisions_catalog_id", "remembered_decisions", ["catalog_id"])


def downgrade() -> None:
    op.drop_index("ix_remembered_decisions_catalog_id", table_name="remembered_decisions")
    op.drop_table("remembered_decisions")
