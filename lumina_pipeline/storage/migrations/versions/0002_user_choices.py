"""Record whether a group's primary or a burst's best frame was chosen by a person

Revision ID: 0002
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column(
        "duplicate_groups", sa.Column("primary_chosen", sa.Boolean(), server_default=sa.false(), nullable=False)
    )
    op.add_column("bursts", sa.Column("best_chosen", sa.Boolean(), server_default=sa.false(), nullable=False))


def downgrade() -> None:
    op.drop_column("bursts", "best_chosen")
    op.drop_column("duplicate_groups", "primary_chosen")
