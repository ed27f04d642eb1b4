"""What people said of a file's content (kept, rating, manual tags) while no file holds that content;
the catalog's pending and deleted files found by index

Revision ID: 0020
Revises: 0019
"""

import sqlalchemy as sa
from alembic import op

revision = "0020"
down_revision = "0019"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "parked_marks",
        sa.Column("id", sa.BigInteger(), sa.Identity(), nullable=False),
        sa.Column("catalog_id", sa.UUID(), nullable=False),
        sa.Column("checksum", sa.String(length=64), nullable=False),
        sa.Column("path", sa.LargeBinary(), nullable=False),
        sa.Column("kept", sa.Boolean(), nullable=False),
        sa.Column("rating", sa.SmallInteger(), nullable=True),
        sa.Column("tag_ids", sa.ARRAY(sa.BigInteger()), nullable=False),
        sa.ForeignKeyConstraint(["catalog_id"], ["catalogs.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_parked_marks_catalog_id_checksum", "parked_marks", ["catalog_id", "checksum"])
    op.create_index("ix_images_pending", "images", ["catalog_id"], postgresql_where=sa.text("status = 'pending'"))
    op.create_index("ix_images_deleted", "images", ["catalog_id", "checksum"],
                    postgresql_where=sa.text("status = 'deleted'"))


def downgrade() -> None:
    op.drop_index("ix_images_deleted", table_name="images")
    op.drop_index("ix_images_pending", table_name="images")
    op.drop_index("ix_parked_marks_catalog_id_checksum", table_name="parked_marks")
    op.drop_table("parked_marks")
