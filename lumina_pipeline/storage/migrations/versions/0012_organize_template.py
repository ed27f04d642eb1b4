"""How a catalog's organized tree is laid out (its folder template) and whether organizing
moves rather than copies by default

Revision ID: 0012
Revises: 0011
"""

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("catalogs", sa.Column("organize_template", sa.Text(), nullable=True))
    op.add_column("catalogs", sa.Column("organize_move", sa.Boolean(), server_default=sa.text("false"), nullable=False))


def downgrade() -> None:
    op.drop_column("catalogs", "organize_move")
    op.drop_column("catalogs", "organize_template")
