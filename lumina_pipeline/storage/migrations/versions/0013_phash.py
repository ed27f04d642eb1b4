"""Each image's DCT perceptual hash (imagehash.phash), the second opinion that confirms a
near-duplicate pair found by ahash

Revision ID: 0013
Revises: 0012
"""

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("images", sa.Column("phash", sa.String(length=16), nullable=True))


def downgrade() -> None:
    op.drop_column("images", "phash")
