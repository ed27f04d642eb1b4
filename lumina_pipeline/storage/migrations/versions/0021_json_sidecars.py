"""Google Takeout's `.json` files, cataloged as other files before they were sidecars
(analysis/files.py KINDS), are sidecars, so that they travel with their photo.

Revision ID: 0021
Revises: 0020
"""

from alembic import op

revision = "0021"
down_revision = "0020"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("""
        UPDATE images SET kind = 'sidecar', error = 'sidecar file, not a photo', updated_at = now()
        WHERE kind = 'other' AND lower(encode(substring(path FROM length(path) - 4), 'escape')) = '.json'""")


def downgrade() -> None:
    op.execute("""
        UPDATE images SET kind = 'other', error = 'not a photo or video', updated_at = now()
        WHERE kind = 'sidecar' AND lower(encode(substring(path FROM length(path) - 4), 'escape')) = '.json'""")
