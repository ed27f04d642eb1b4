"""A person's star rating of an image (0-5), kept by every pipeline re-run

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
    op.add_column("images", sa.Column("rating", sa.SmallInteger(), nullable=True))
    op.create_check_constraint("ck_images_rating", "images", "rating BETWEEN 0 AND 5")


def downgrade() -> None:
    op.drop_constraint("ck_images_rating", "images")
    op.drop_column("images", "rating")
