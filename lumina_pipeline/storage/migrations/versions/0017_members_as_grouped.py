"""Groups, bursts and stacks keep their members as grouped; a reviewed group's keeper is chosen

Revision ID: 0017
Revises: 0016
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import ARRAY

revision = "0017"
down_revision = "0016"
branch_labels = None
depends_on = None

# each grouping table and its members' images `i` (as storage/groups.py joins them)
MEMBERS = {
    "duplicate_groups": "duplicate_members m JOIN images i ON i.id = m.image_id WHERE m.group_id = g.id",
    "bursts": "images i WHERE i.burst_id = g.id",
    "stacks": "images i WHERE i.stack_id = g.id",
}


def upgrade() -> None:
    for table, members in MEMBERS.items():
        op.add_column(table, sa.Column("member_ids", ARRAY(sa.BigInteger()), nullable=True))
        op.add_column(table, sa.Column("member_checksums", ARRAY(sa.String(length=64)), nullable=True))
        # the rows as they are now: the best account of what was grouped before this revision
        op.execute(f"""
            UPDATE {table} g SET member_ids = s.ids, member_checksums = s.checksums
            FROM {table} o CROSS JOIN LATERAL (
                SELECT array_agg(i.id ORDER BY i.id) AS ids, array_agg(i.checksum ORDER BY i.id) AS checksums
                FROM {members.replace("g.id", "o.id")}) s
            WHERE o.id = g.id""")
    # reviewing now chooses the keeper shown (storage/decisions.py)
    op.execute("UPDATE duplicate_groups SET primary_chosen = true WHERE reviewed")
    op.execute("UPDATE bursts SET best_chosen = true WHERE reviewed")


def downgrade() -> None:
    for table in MEMBERS:
        op.drop_column(table, "member_checksums")
        op.drop_column(table, "member_ids")
