"""Stacks: one shot stored as several files (RAW + JPEG, a Live Photo's still and video)

Revision ID: 0008
Revises: 0007
"""

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "stacks",
        sa.Column("id", sa.UUID(), nullable=False),
        sa.Column("catalog_id", sa.UUID(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("primary_image_id", sa.BigInteger(), nullable=True),
        sa.Column("reviewed", sa.Boolean(), server_default=sa.text("false"), nullable=False),
        sa.Column("primary_chosen", sa.Boolean(), server_default=sa.text("false"), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.ForeignKeyConstraint(["catalog_id"], ["catalogs.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["primary_image_id"], ["images.id"], ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_stacks_catalog_id", "stacks", ["catalog_id"])
    op.create_index("ix_stacks_primary_image_id", "stacks", ["primary_image_id"])
    op.add_column("images", sa.Column("stack_id", sa.UUID(), nullable=True))
    op.create_foreign_key("images_stack_id_fkey", "images", "stacks", ["stack_id"], ["id"], ondelete="SET NULL")
    op.create_index("ix_images_stack_id", "images", ["stack_id"])


def downgrade() -> None:
    op.drop_index("ix_images_stack_id", table_name="images")
    op.drop_constraint("images_stack_id_fkey", "images", type_="foreignkey")
    op.drop_column("images", "stack_id")
    op.drop_index("ix_stacks_primary_image_id", table_name="stacks")
    op.drop_index("ix_stacks_catalog_id", table_name="stacks")
    op.drop_table("stacks")
