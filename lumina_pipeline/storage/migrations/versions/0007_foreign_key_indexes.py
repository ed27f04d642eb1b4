"""An index on every foreign key a delete has to check: replacing a catalog's bursts scanned
the whole images table once per deleted burst (images.burst_id had none)

Revision ID: 0007
Revises: 0006
"""

from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

# (table, column): the referencing side of each foreign key that no index leads with
REFERENCES = [
    ("images", "burst_id"),
    ("duplicate_groups", "primary_image_id"),
    ("duplicate_members", "image_id"),
    ("bursts", "best_image_id"),
    ("tags", "parent_id"),
    ("image_tags", "tag_id"),
]


def upgrade() -> None:
    for table, column in REFERENCES:
        op.create_index(f"ix_{table}_{column}", table, [column])


def downgrade() -> None:
    for table, column in REFERENCES:
        op.drop_index(f"ix_{table}_{column}", table_name=table)
