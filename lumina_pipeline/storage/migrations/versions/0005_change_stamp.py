"""A row version on images, bumped by every inventory change, so a batch writes only rows still as it read them

Revision ID: 0005
Revises: 0004
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("images", sa.Column("change_stamp", sa.BigInteger(), server_default="0", nullable=False))


def downgrade() -> None:
    op.drop_column("images", "change_stamp")
