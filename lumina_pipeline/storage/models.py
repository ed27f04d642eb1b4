"""The catalog tables (DESIGN.md), as SQLAlchemy 2.0 typed models. Alembic migrates them."""

import uuid
from datetime import datetime

from pgvector.sqlalchemy import Vector
from sqlalchemy import (
    ARRAY,
    BigInteger,
    Boolean,
    CheckConstraint,
    DateTime,
    Float,
    ForeignKey,
    Identity,
    Index,
    Integer,
    LargeBinary,
    SmallInteger,
    String,
    Text,
    UniqueConstraint,
    false,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB, UUID
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


class Base(DeclarativeBase):
    pass


def _created() -> Mapped[datetime]:
    return mapped_column(DateTime(timezone=True), server_default=func.now())


def _catalog_fk(sort_order: int = 0) -> Mapped[uuid.UUID]:
    return mapped_column(ForeignKey("catalogs.id", ondelete="CASCADE"), index=True, sort_order=sort_order)


class Stamped:
    created_at: Mapped[datetime] = _created()
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), onupdate=func.now()
    )


class Catalog(Stamped, Base):
    __tablename__ = "catalogs"

    id: Mapped[uuid.UUID] = mapped_column(UUID, primary_key=True, default=uuid.uuid4)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    source_directories: Mapped[list[str]] = mapped_column(ARRAY(Text))
    organized_directory: Mapped[str | None] = mapped_column(Text)
    organize_template: Mapped[str | None] = mapped_column(Text)  # its folders (analysis/organize.py)
    organize_move: Mapped[bool] = mapped_column(Boolean, server_default=false())  # move rather than copy by default
    batch_size: Mapped[int] = mapped_column(Integer)  # fixed at creation: batches are append-only
    # per grouping table: what its last regrouping read ("read", a digest) and found ("figures")
    groupings: Mapped[dict] = mapped_column(JSONB, server_default=text("'{}'"))


class Image(Stamped, Base):
    """One file of a catalog, from the inventory on; analysis fills in the rest."""

    __tablename__ = "images"
    __table_args__ = (
        UniqueConstraint("catalog_id", "source_root", "path"),
        Index("ix_images_catalog_batch", "catalog_id", "batch"),
        Index("ix_images_catalog_checksum", "catalog_id", "checksum"),
        # a catalog's files left to read and its deleted files, few among many: every batch asks
        # for both (decisions.hand_over_deleted_files)
        Index("ix_images_pending", "catalog_id", postgresql_where=text("status = 'pending'")),
        Index("ix_images_deleted", "catalog_id", "checksum", postgresql_where=text("status = 'deleted'")),
        CheckConstraint("rating BETWEEN 0 AND 5", name="ck_images_rating"),
    )

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    catalog_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("catalogs.id", ondelete="CASCADE"))
    source_root: Mapped[str] = mapped_column(Text)
    path: Mapped[bytes] = mapped_column(LargeBinary)  # relative to source_root, raw bytes
    kind: Mapped[str] = mapped_column(String(16))  # image / raw / video / sidecar / system / other
    size_bytes: Mapped[int] = mapped_column(BigInteger)
    mtime_ns: Mapped[int] = mapped_column(BigInteger)
    # bumped by every change the inventory applies: a batch writes only rows still as it read them
    change_stamp: Mapped[int] = mapped_column(BigInteger, server_default="0")
    batch: Mapped[str] = mapped_column(String(8))
    checksum: Mapped[str | None] = mapped_column(String(64))  # SHA-256, hex
    # pending (not read yet) / ok / error / skipped / ignored / deleted
    status: Mapped[str] = mapped_column(String(16))
    error: Mapped[str | None] = mapped_column(Text)
    dates: Mapped[dict | None] = mapped_column(JSONB)
    image_metadata: Mapped[dict | None] = mapped_column("metadata", JSONB)
    dhash: Mapped[str | None] = mapped_column(String(16))
    ahash: Mapped[str | None] = mapped_column(String(16))
    whash: Mapped[str | None] = mapped_column(String(16))
    phash: Mapped[str | None] = mapped_column(String(16))
    hash_version: Mapped[str | None] = mapped_column(Text)
    analysis_version: Mapped[str | None] = mapped_column(Text)  # what last read the file
    verified_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))  # checksum re-read
    geohash_4: Mapped[str | None] = mapped_column(String(4))
    geohash_6: Mapped[str | None] = mapped_column(String(6))
    geohash_8: Mapped[str | None] = mapped_column(String(8))
    quality_score: Mapped[int | None] = mapped_column(SmallInteger)
    rating: Mapped[int | None] = mapped_column(SmallInteger)  # a person's stars, 0-5
    # a person keeps this file whatever its groups say (keep several, keep all): never removable
    kept: Mapped[bool] = mapped_column(Boolean, server_default=false())
    thumbnail_path: Mapped[str | None] = mapped_column(Text)
    description: Mapped[str | None] = mapped_column(Text)
    processing_flags: Mapped[dict | None] = mapped_column(JSONB)
    burst_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("bursts.id", ondelete="SET NULL", use_alter=True), index=True  # bursts point back at images
    )
    burst_sequence: Mapped[int | None] = mapped_column(Integer)
    stack_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("stacks.id", ondelete="SET NULL", use_alter=True), index=True  # stacks point back at images
    )


class AsGrouped:
    """A group of one kind (duplicates, a burst, a stack) and its members as it grouped them,
    what people's decisions on it were made on, whatever the files' rows say since
    (analysis/continuity.py)."""

    # id and catalog_id first, as the migrations made the tables (a mixin's columns come last)
    id: Mapped[uuid.UUID] = mapped_column(UUID, primary_key=True, default=uuid.uuid4, sort_order=-2)
    catalog_id: Mapped[uuid.UUID] = _catalog_fk(sort_order=-1)
    reviewed: Mapped[bool] = mapped_column(Boolean, server_default=false())  # stacks: for the shared grouping path
    created_at: Mapped[datetime] = _created()
    member_ids: Mapped[list[int] | None] = mapped_column(ARRAY(BigInteger))
    member_checksums: Mapped[list[str | None] | None] = mapped_column(ARRAY(String(64)))


class DuplicateGroup(AsGrouped, Base):
    __tablename__ = "duplicate_groups"

    primary_image_id: Mapped[int | None] = mapped_column(ForeignKey("images.id", ondelete="SET NULL"), index=True)
    similarity_type: Mapped[str] = mapped_column(String(16))  # exact / perceptual
    confidence: Mapped[int] = mapped_column(SmallInteger)  # 0-100
    primary_chosen: Mapped[bool] = mapped_column(Boolean, server_default=false())  # by a person


class DuplicateMember(Base):
    __tablename__ = "duplicate_members"

    group_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("duplicate_groups.id", ondelete="CASCADE"), primary_key=True
    )
    image_id: Mapped[int] = mapped_column(ForeignKey("images.id", ondelete="CASCADE"), primary_key=True, index=True)
    similarity_score: Mapped[int] = mapped_column(SmallInteger)  # 0-100


class Burst(AsGrouped, Base):
    __tablename__ = "bursts"

    image_count: Mapped[int] = mapped_column(Integer)
    start_time: Mapped[datetime | None] = mapped_column(DateTime)
    end_time: Mapped[datetime | None] = mapped_column(DateTime)
    duration_seconds: Mapped[float | None] = mapped_column(Float)
    camera_make: Mapped[str | None] = mapped_column(Text)
    camera_model: Mapped[str | None] = mapped_column(Text)
    best_image_id: Mapped[int | None] = mapped_column(ForeignKey("images.id", ondelete="SET NULL"), index=True)
    selection_method: Mapped[str | None] = mapped_column(String(32))
    best_chosen: Mapped[bool] = mapped_column(Boolean, server_default=false())  # by a person


class Stack(AsGrouped, Base):
    """One shot stored as several files (RAW + JPEG, a Live Photo's still and video, a photo and
    its sidecars); its members are the images whose stack_id points here."""

    __tablename__ = "stacks"

    kind: Mapped[str] = mapped_column(String(16))  # raw_jpeg / live_photo / with_sidecar
    primary_image_id: Mapped[int | None] = mapped_column(ForeignKey("images.id", ondelete="SET NULL"), index=True)
    primary_chosen: Mapped[bool] = mapped_column(Boolean, server_default=false())


class RememberedDecision(Base):
    """A person's decision on a group (or burst, or stack) gone or changed, by its kind and
    members' checksums, to give back when a group of the same members forms again
    (analysis/continuity.py says how long it lives)."""

    __tablename__ = "remembered_decisions"

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)  # members can outgrow an index key
    catalog_id: Mapped[uuid.UUID] = _catalog_fk()
    grouping: Mapped[str] = mapped_column(String(32))  # the groups' table: duplicate_groups / bursts / stacks
    kind: Mapped[str] = mapped_column(String(16))  # exact / perceptual / burst / stack
    members: Mapped[str] = mapped_column(Text)  # their checksums, sorted, space-separated
    reviewed: Mapped[bool] = mapped_column(Boolean)
    chosen_id: Mapped[int | None] = mapped_column(BigInteger)  # no foreign key: outlives its image row
    chosen_checksum: Mapped[str | None] = mapped_column(String(64))


class ParkedMarks(Base):
    """What a person said of a file (kept, rating, manual tags) whose content has left it (it
    was rewritten with other bytes, or its file is gone) and that no file holds yet, by that
    content's checksum: the next file to hold it takes them (storage/decisions.py)."""

    __tablename__ = "parked_marks"
    __table_args__ = (Index("ix_parked_marks_catalog_id_checksum", "catalog_id", "checksum"),)

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    catalog_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("catalogs.id", ondelete="CASCADE"))
    checksum: Mapped[str] = mapped_column(String(64))
    path: Mapped[bytes] = mapped_column(LargeBinary)  # of the file that held it: its name is matched first
    phash: Mapped[str | None] = mapped_column(String(16))  # of that content: the same picture rewritten takes it back
    kept: Mapped[bool] = mapped_column(Boolean)
    rating: Mapped[int | None] = mapped_column(SmallInteger)
    tag_ids: Mapped[list[int]] = mapped_column(ARRAY(BigInteger))  # no foreign keys: tags.id of manual tags


class Tag(Base):
    __tablename__ = "tags"
    __table_args__ = (UniqueConstraint("catalog_id", "name"),)

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    catalog_id: Mapped[uuid.UUID] = _catalog_fk()
    name: Mapped[str] = mapped_column(Text)
    category: Mapped[str | None] = mapped_column(Text)
    parent_id: Mapped[int | None] = mapped_column(ForeignKey("tags.id", ondelete="SET NULL"), index=True)
    synonyms: Mapped[list[str] | None] = mapped_column(ARRAY(Text))
    description: Mapped[str | None] = mapped_column(Text)


class ImageTag(Base):
    __tablename__ = "image_tags"

    image_id: Mapped[int] = mapped_column(ForeignKey("images.id", ondelete="CASCADE"), primary_key=True)
    tag_id: Mapped[int] = mapped_column(ForeignKey("tags.id", ondelete="CASCADE"), primary_key=True, index=True)
    confidence: Mapped[float | None] = mapped_column(Float)
    source: Mapped[str] = mapped_column(String(16))  # manual / openclip / ollama / combined / model
    # "<source>:<model id>" -> that model's confidence (null for Ollama); two sources: "combined"
    source_confidences: Mapped[dict | None] = mapped_column(JSONB)
    created_at: Mapped[datetime] = _created()


class ContentCaption(Base):
    """What a vision model said about one content, asked with one prompt version: copies and
    re-runs reuse it, another model or prompt version asks again."""

    __tablename__ = "captions"

    checksum: Mapped[str] = mapped_column(String(64), primary_key=True)  # SHA-256 of the file
    model: Mapped[str] = mapped_column(Text, primary_key=True)
    prompt_version: Mapped[str] = mapped_column(String(16), primary_key=True)
    description: Mapped[str | None] = mapped_column(Text)  # null when the model gave no caption
    tags: Mapped[list[str] | None] = mapped_column(ARRAY(Text))
    error: Mapped[str | None] = mapped_column(Text)  # why not; the next run asks again
    attempts: Mapped[int] = mapped_column(SmallInteger)
    created_at: Mapped[datetime] = _created()


TEXT_DIMENSIONS = 384  # all-MiniLM-L6-v2


class DescriptionVector(Base):
    """A sentence-model vector of an image's description and tags, for search by meaning."""

    __tablename__ = "description_vectors"
    __table_args__ = (
        Index("ix_description_vectors_hnsw", "embedding", postgresql_using="hnsw",
              postgresql_ops={"embedding": "vector_cosine_ops"}),
    )

    image_id: Mapped[int] = mapped_column(ForeignKey("images.id", ondelete="CASCADE"), primary_key=True)
    catalog_id: Mapped[uuid.UUID] = _catalog_fk()
    text_model: Mapped[str] = mapped_column(Text)
    embedding = mapped_column(Vector(TEXT_DIMENSIONS), nullable=False)


class FileAction(Stamped, Base):
    """One operation on a person's file (move or copy to a planned place), written before it
    happens and updated after (storage/journal.py, actions/): what makes a killed run
    resumable and every run undoable.

    state: planned -> done | skipped (reason); done -> undoing -> undone (or done again, with
    the reason undo refused); done -> purging -> purged (quarantine only)."""

    __tablename__ = "file_actions"
    __table_args__ = (Index("ix_file_actions_catalog_state", "catalog_id", "state"),)

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    run_id: Mapped[str] = mapped_column(String(32), index=True)  # also the run's folder name
    catalog_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("catalogs.id", ondelete="CASCADE"))
    action: Mapped[str] = mapped_column(String(16))  # quarantine / organize
    image_id: Mapped[int | None] = mapped_column(ForeignKey("images.id", ondelete="SET NULL"), index=True)
    operation: Mapped[str] = mapped_column(String(8))  # move / copy
    source: Mapped[bytes] = mapped_column(LargeBinary)  # absolute paths, raw bytes
    target: Mapped[bytes] = mapped_column(LargeBinary)
    size_bytes: Mapped[int] = mapped_column(BigInteger)  # the file as cataloged
    mtime_ns: Mapped[int] = mapped_column(BigInteger)
    checksum: Mapped[str] = mapped_column(String(64))
    state: Mapped[str] = mapped_column(String(16))
    reason: Mapped[str | None] = mapped_column(Text)  # why skipped, or why undo refused
    status_before: Mapped[str | None] = mapped_column(String(16))  # images.status that undo restores
    status_after: Mapped[str | None] = mapped_column(String(16))  # images.status once done (null: unchanged)
    # a quarantined copy's keeper, which must still be in place when purge deletes the copy
    keep_image_id: Mapped[int | None] = mapped_column(ForeignKey("images.id", ondelete="SET NULL"), index=True)
