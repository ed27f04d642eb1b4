"""Captions from a vision model keyed by content, description vectors, tag confidences keyed by source

Revision ID: 0006
Revises: 0005
"""

import sqlalchemy as sa
from alembic import op
from pgvector.sqlalchemy import Vector

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "captions",
        sa.Column("checksum", sa.String(64), primary_key=True),
        sa.Column("model", sa.Text(), primary_key=True),
        sa.Column("prompt_version", sa.String(16), primary_key=True),
        sa.Column("description", sa.Text()),
        sa.Column("tags", sa.ARRAY(sa.Text())),
        sa.Column("error", sa.Text()),
        sa.Column("attempts", sa.SmallInteger(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
    )
    op.create_table(
        "description_vectors",
        sa.Column("image_id", sa.BigInteger(), sa.ForeignKey("images.id", ondelete="CASCADE"), primary_key=True),
        sa.Column("catalog_id", sa.UUID(), sa.ForeignKey("catalogs.id", ondelete="CASCADE"), nullable=False),
        sa.Column("text_model", sa.Text(), nullable=False),
        sa.Column("embedding", Vector(384), nullable=False),
    )
    op.create_index("ix_description_vectors_catalog_id", "description_vectors", ["catalog_id"])
    op.create_index(
        "ix_description_vectors_hnsw", "description_vectors", ["embedding"],
        postgresql_using="hnsw", postgresql_ops={"embedding": "vector_cosine_ops"},
    )
    # Confidences were keyed by model id alone; with two sources on one tag they are keyed
    # "<source>:<model id>", so that each source can replace its own part.
    op.execute("""
        UPDATE image_tags SET source_confidences = (
            SELECT jsonb_object_agg(source || ':' || key, value) FROM jsonb_each(source_confidences))
        WHERE source <> 'manual' AND source_confidences IS NOT NULL AND source_confidences <> '{}'::jsonb""")


def downgrade() -> None:
    op.execute("""
        UPDATE image_tags SET source_confidences = (
            SELECT jsonb_object_agg(substr(key, strpos(key, ':') + 1), value) FROM jsonb_each(source_confidences))
        WHERE source_confidences IS NOT NULL AND source_confidences <> '{}'::jsonb""")
    op.drop_table("description_vectors")
    op.drop_table("captions")

