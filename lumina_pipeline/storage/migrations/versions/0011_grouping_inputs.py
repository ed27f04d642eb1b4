"""What each grouping of a catalog last read (a digest) and found (its figures), so that a
regrouping with nothing new to read does nothing

Revision ID: 0011
Revises: 0010
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("catalogs", sa.Column("groupings", JSONB(), server_default=sa.text("'{}'"), nullable=False))


def downgrade() -> None:
    op.drop_column("catalogs", "groupings")
