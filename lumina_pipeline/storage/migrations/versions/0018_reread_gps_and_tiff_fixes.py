"""Files read before two fixes of what a file's analysis stores are read again: a GPS block at
0°N 0°E (a receiver without a fix, now no position) and a TIFF turned by its Orientation 5-8
(whose width and height were stored turned). Only those rows: bumping the analysis version
would read every library again.

Revision ID: 0018
Revises: 0017
"""

from alembic import op

revision = "0018"
down_revision = "0017"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # a null analysis version is one no batch wrote: the next batch of the file reads it again
    op.execute("""
        UPDATE images SET analysis_version = NULL
        WHERE status = 'ok' AND (
            (metadata->>'latitude')::float8 = 0 AND (metadata->>'longitude')::float8 = 0
            OR metadata->>'format' = 'TIFF' AND (metadata->>'orientation')::int BETWEEN 5 AND 8)""")


def downgrade() -> None:
    pass  # the rows read again hold what the fixed analysis stores, which is right at any revision
