"""File actions: the journal of quarantine (and organize) runs

Revision ID: 0009
Revises: 0008
"""

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "file_actions",
        sa.Column("id", sa.BigInteger(), sa.Identity(), nullable=False),
        sa.Column("run_id", sa.String(length=32), nullable=False),
        sa.Column("catalog_id", sa.UUID(), nullable=False),
        sa.Column("action", sa.String(length=16), nullable=False),
        sa.Column("image_id", sa.BigInteger(), nullable=True),
        sa.Column("operation", sa.String(length=8), nullable=False),
        sa.Column("source", sa.LargeBinary(), nullable=False),
        sa.Column("target", sa.LargeBinary(), nullable=False),
        sa.Column("size_bytes", sa.BigInteger(), nullable=False),
        sa.Column("mtime_ns", sa.BigInteger(), nullable=False),
        sa.Column("checksum", sa.String(length=64), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("status_before", sa.String(length=16), nullable=True),
        sa.Column("status_after", sa.String(length=16), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.ForeignKeyConstraint(["catalog_id"], ["catalogs.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["image_id"], ["images.id"], ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_file_actions_catalog_state", "file_actions", ["catalog_id", "state"])
    op.create_index("ix_file_actions_run_id", "file_actions", ["run_id"])
    op.create_index("ix_file_actions_image_id", "file_actions", ["image_id"])


def downgrade() -> None:
    op.drop_index("ix_file_actions_image_id", table_name="file_actions")
    op.drop_index("ix_file_actions_run_id", table_name="file_actions")
    op.drop_index("ix_file_actions_catalog_state", table_name="file_actions")
    op.drop_table("file_actions")
