"""The pHash of a content whose marks are parked: a file rewritten in place as the same picture
takes them back (storage/decisions.py).

Revision ID: 0022
Revises: 0021
"""

import sqlalchemy as sa
from alembic import op

revision = "0022"
down_revision = "0021"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("parked_marks", sa.Column("phash", sa.String(length=16), nullable=True))


def downgrade() -> None:
    op.drop_column("parked_marks", "phash")
