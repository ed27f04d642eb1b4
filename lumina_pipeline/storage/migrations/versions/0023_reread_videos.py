"""Videos are read again: a video's poster is now its first picture (the keyframe nearest 1 s
before, which depended on how the file was encoded), and its hashes, thumbnail and vector
come from it. Only videos: bumping the analysis version would read every library again.

Revision ID: 0023
Revises: 0022
"""

from alembic import op

revision = "0023"
down_revision = "0022"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # a null analysis version is one no batch wrote: the next batch of the file reads it again
    op.execute("UPDATE images SET analysis_version = NULL WHERE kind = 'video'")


def downgrade() -> None:
    pass  # the videos read again hold what the new analysis stores, which is right at any revision
