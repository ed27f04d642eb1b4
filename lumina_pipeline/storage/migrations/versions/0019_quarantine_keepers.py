"""The file kept in place of each quarantined copy, which purge checks before it deletes the copy

Revision ID: 0019
Revises: 0018
"""

import sqlalchemy as sa
from alembic import op

revision = "0019"
down_revision = "0018"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("file_actions", sa.Column("keep_image_id", sa.BigInteger(), nullable=True))
    op.create_foreign_key("file_actions_keep_image_id_fkey", "file_actions", "images", ["keep_image_id"], ["id"],
                          ondelete="SET NULL")
    op.create_index("ix_file_actions_keep_image_id", "file_actions", ["keep_image_id"])


def downgrade() -> None:
    op.drop_index("ix_file_actions_keep_image_id", table_name="file_actions")
    op.drop_constraint("file_actions_keep_image_id_fkey", "file_actions", type_="foreignkey")
    op.drop_column("file_actions", "keep_image_id")
