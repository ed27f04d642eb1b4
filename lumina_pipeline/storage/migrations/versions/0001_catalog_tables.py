"""catalog tables

Revision ID: 0001
Revises: 
Create Date: 2026-11-24 21:56:26.969280
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = '0001'
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    # pgvector is needed by the embeddings tables; failing here tells early that it is missing.
    op.execute("CREATE EXTENSION IF NOT EXISTS vector")
    op.create_table('catalogs',
    sa.Column('id', sa.UUID(), nullable=False),
    sa.Column('name', sa.String(length=64), nullable=False),
    sa.Column('source_directories', sa.ARRAY(sa.Text()), nullable=False),
    sa.Column('organized_directory', sa.Text(), nullable=True),
    sa.Column('batch_size', sa.Integer(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('name')
    )
    op.create_table('images',
    sa.Column('id', sa.BigInteger(), sa.Identity(always=False), nullable=False),
    sa.Column('catalog_id', sa.UUID(), nullable=False),
    sa.Column('source_root', sa.Text(), nullable=False),
    sa.Column('path', sa.LargeBinary(), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('size_bytes', sa.BigInteger(), nullable=False),
    sa.Column('mtime_ns', sa.BigInteger(), nullable=False),
    sa.Column('batch', sa.String(length=8), nullable=False),
    sa.Column('checksum', sa.String(length=64), nullable=True),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('error', sa.Text(), nullable=True),
    sa.Column('dates', postgresql.JSONB(astext_type=sa.Text()), nullable=True),
    sa.Column('metadata', postgresql.JSONB(astext_type=sa.Text()), nullable=True),
    sa.Column('dhash', sa.String(length=16), nullable=True),
    sa.Column('ahash', sa.String(length=16), nullable=True),
    sa.Column('whash', sa.String(length=16), nullable=True),
    sa.Column('hash_version', sa.Text(), nullable=True),
    sa.Column('geohash_4', sa.String(length=4), nullable=True),
    sa.Column('geohash_6', sa.String(length=6), nullable=True),
    sa.Column('geohash_8', sa.String(length=8), nullable=True),
    sa.Column('quality_score', sa.SmallInteger(), nullable=True),
    sa.Column('thumbnail_path', sa.Text(), nullable=True),
    sa.Column('description', sa.Text(), nullable=True),
    sa.Column('processing_flags', postgresql.JSONB(astext_type=sa.Text()), nullable=True),
    sa.Column('burst_id', sa.UUID(), nullable=True),
    sa.Column('burst_sequence', sa.Integer(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.ForeignKeyConstraint(['catalog_id'], ['catalogs.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('catalog_id', 'source_root', 'path')
    )
    op.create_index('ix_images_catalog_batch', 'images', ['catalog_id', 'batch'], unique=False)
    op.create_index('ix_images_catalog_checksum', 'images', ['catalog_id', 'checksum'], unique=False)
    op.create_table('tags',
    sa.Column('id', sa.BigInteger(), sa.Identity(always=False), nullable=False),
    sa.Column('catalog_id', sa.UUID(), nullable=False),
    sa.Column('name', sa.Text(), nullable=False),
    sa.Column('category', sa.Text(), nullable=True),
    sa.Column('parent_id', sa.BigInteger(), nullable=True),
    sa.Column('synonyms', sa.ARRAY(sa.Text()), nullable=True),
    sa.Column('description', sa.Text(), nullable=True),
    sa.ForeignKeyConstraint(['catalog_id'], ['catalogs.id'], ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['parent_id'], ['tags.id'], ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('catalog_id', 'name')
    )
    op.create_index(op.f('ix_tags_catalog_id'), 'tags', ['catalog_id'], unique=False)
    op.create_table('bursts',
    sa.Column('id', sa.UUID(), nullable=False),
    sa.Column('catalog_id', sa.UUID(), nullable=False),
    sa.Column('image_count', sa.Integer(), nullable=False),
    sa.Column('start_time', sa.DateTime(), nullable=True),
    sa.Column('end_time', sa.DateTime(), nullable=True),
    sa.Column('duration_seconds', sa.Float(), nullable=True),
    sa.Column('camera_make', sa.Text(), nullable=True),
    sa.Column('camera_model', sa.Text(), nullable=True),
    sa.Column('best_image_id', sa.BigInteger(), nullable=True),
    sa.Column('selection_method', sa.String(length=32), nullable=True),
    sa.Column('reviewed', sa.Boolean(), server_default=sa.text('false'), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.ForeignKeyConstraint(['best_image_id'], ['images.id'], ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['catalog_id'], ['catalogs.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_index(op.f('ix_bursts_catalog_id'), 'bursts', ['catalog_id'], unique=False)
    op.create_table('duplicate_groups',
    sa.Column('id', sa.UUID(), nullable=False),
    sa.Column('catalog_id', sa.UUID(), nullable=False),
    sa.Column('primary_image_id', sa.BigInteger(), nullable=True),
    sa.Column('similarity_type', sa.String(length=16), nullable=False),
    sa.Column('confidence', sa.SmallInteger(), nullable=False),
    sa.Column('reviewed', sa.Boolean(), server_default=sa.text('false'), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.ForeignKeyConstraint(['catalog_id'], ['catalogs.id'], ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['primary_image_id'], ['images.id'], ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_index(op.f('ix_duplicate_groups_catalog_id'), 'duplicate_groups', ['catalog_id'], unique=False)
    op.create_table('image_tags',
    sa.Column('image_id', sa.BigInteger(), nullable=False),
    sa.Column('tag_id', sa.BigInteger(), nullable=False),
    sa.Column('confidence', sa.Float(), nullable=True),
    sa.Column('source', sa.String(length=16), nullable=False),
    sa.Column('source_confidences', postgresql.JSONB(astext_type=sa.Text()), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.ForeignKeyConstraint(['image_id'], ['images.id'], ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['tag_id'], ['tags.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('image_id', 'tag_id')
    )
    op.create_table('duplicate_members',
    sa.Column('group_id', sa.UUID(), nullable=False),
    sa.Column('image_id', sa.BigInteger(), nullable=False),
    sa.Column('similarity_score', sa.SmallInteger(), nullable=False),
    sa.ForeignKeyConstraint(['group_id'], ['duplicate_groups.id'], ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['image_id'], ['images.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('group_id', 'image_id')
    )
    # images and bursts point at each other: the second key comes once both tables exist
    op.create_foreign_key(
        "images_burst_id_fkey", "images", "bursts", ["burst_id"], ["id"], ondelete="SET NULL"
    )


def downgrade() -> None:
    op.drop_constraint("images_burst_id_fkey", "images", type_="foreignkey")
    op.drop_table('duplicate_members')
    op.drop_table('image_tags')
    op.drop_index(op.f('ix_duplicate_groups_catalog_id'), table_name='duplicate_groups')
    op.drop_table('duplicate_groups')
    op.drop_index(op.f('ix_bursts_catalog_id'), table_name='bursts')
    op.drop_table('bursts')
    op.drop_index(op.f('ix_tags_catalog_id'), table_name='tags')
    op.drop_table('tags')
    op.drop_index('ix_images_catalog_checksum', table_name='images')
    op.drop_index('ix_images_catalog_batch', table_name='images')
    op.drop_table('images')
    op.drop_table('catalogs')
