"""Image vectors are written outside their HNSW index and brought into it by the catalog-level
step: `indexed` per vector (true for those already in the index), the index partial on it

Revision ID: 0015
Revises: 0014
"""

import sqlalchemy as sa
from alembic import op

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None


def upgrade() -> None:
    for table, index, definition in _vector_indexes():
        op.execute(f"ALTER TABLE {table} ADD COLUMN indexed boolean NOT NULL DEFAULT true")
        op.execute(f"ALTER TABLE {table} ALTER COLUMN indexed SET DEFAULT false")
        op.execute(f"DROP INDEX {index}")
        op.execute(f"{definition} WHERE indexed")


def downgrade() -> None:
    for table, index, definition in _vector_indexes():
        op.execute(f"DROP INDEX {index}")
        op.execute(definition.removesuffix(" WHERE indexed"))
        op.execute(f"ALTER TABLE {table} DROP COLUMN indexed")


def _vector_indexes() -> list[tuple[str, str, str]]:
    """(table, index, its CREATE INDEX) of each model's vector table (embeddings_<model>)."""
    return [tuple(row) for row in op.get_bind().execute(sa.text(
        "SELECT tablename, indexname, indexdef FROM pg_indexes"
        " WHERE tablename LIKE 'embeddings\\_%' AND indexname LIKE '%\\_hnsw'"
    ))]
