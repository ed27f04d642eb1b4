"""Search a catalog by meaning (`lumina search`) and by example (`lumina similar`)."""

import hashlib
import os
import uuid
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import numpy as np
from numpy.typing import NDArray
from sqlalchemy import Table, text
from sqlalchemy.orm import Session

from lumina_pipeline.analysis.files import path_from_display, shown
from lumina_pipeline.models import ImageModel, TextAndImageModel, load_image_model
from lumina_pipeline.models.text import TextEncoder
from lumina_pipeline.storage.captions import description_matches, vector_text
from lumina_pipeline.storage.catalogs import CatalogError, get_catalog
from lumina_pipeline.storage.embeddings import Match, catalog_labels, embeddings_table, nearest, vectors_of

LABELS_SHOWN = 3

# How a label name's similarity to the query becomes a match: in standard deviations above
# the mean over all 1000 labels (any two phrases share some similarity, only what stands out
# counts), none below NO_MATCH_Z, full from FULL_MATCH_Z, linear in between. A photo scores
# the probability the image model gives its matching labels, and is a result only from
# RELEVANCE_FLOOR. Calibrated on the corpus: the photos its queries expect score >= 0.10
# wherever the search finds them (8 of 10 queries, as before the floor), while the best
# photo for a subject it does not show ("a dog", "a submarine", "a piano", "xyzzy", ...)
# scores <= 0.071. Of the z values tried (1.5-3 and 2-7), these two gave the widest gap
# between those two scores; the floor sits in its middle. test_embeddings.py checks both.
# CLIP has no floor: its scores are cosines, and no CLIP weights were at hand to calibrate one.
NO_MATCH_Z = 2.25
FULL_MATCH_Z = 4.25
RELEVANCE_FLOOR = 0.085
# How a photo's description (and its tags, `captions`) means the query, 0 to 1, from the
# MiniLM cosine of the two: none below DESCRIPTION_NO_MATCH, full from DESCRIPTION_FULL_MATCH.
# Captions written for the corpus' queries have cosines of 0.57-0.73 with them, and the same
# captions 0.31 at most with queries about something else ("a submarine" and a lighthouse).
# The match adds to the label or CLIP score, so a caption that says what was asked for
# finds a photo no ImageNet label fits, and agreeing evidence ranks first.
DESCRIPTION_NO_MATCH = 0.35
DESCRIPTION_FULL_MATCH = 0.6


@dataclass
class SearchModels:
    """The models a search needs, loaded on first use and kept (a server answers many)."""

    cache_dir: Path
    clip_path: str = ""

    @cached_property
    def image(self) -> ImageModel:
        return load_image_model(self.cache_dir, self.clip_path)

    @cached_property
    def table(self) -> Table:
        return embeddings_table(self.image.model_id, self.image.dimensions)

    @cached_property
    def text(self) -> TextEncoder:
        return TextEncoder(self.cache_dir)

    @cached_property
    def label_vectors(self) -> NDArray[np.float32]:
        """The text model's vectors of the label names: embedding 1000 names takes seconds,
        so they are kept beside the models, named after the text model and the labels."""
        labels = self.image.labels
        if labels is None:
            raise ValueError(f"{self.image.model_id} has no labels")
        key = hashlib.sha256("\n".join([TextEncoder.model_id, *labels]).encode()).hexdigest()[:16]
        cached = self.cache_dir / f"label-vectors-{key}.npy"
        if not cached.exists():
            cached.parent.mkdir(parents=True, exist_ok=True)
            partial = cached.with_suffix(f".{os.getpid()}.part")  # two first searches at once each write their own
            with partial.open("wb") as file:
                np.save(file, self.text.embed(labels))
            partial.replace(cached)
        return np.load(cached)


@dataclass(frozen=True)
class SearchResult:
    image_id: int
    path: str  # as `lumina export` shows it
    score: float
    reason: str  # why it matched


def search_text(session: Session, catalog: str, query: str, k: int, models: SearchModels) -> list[SearchResult]:
    """With CLIP: nearest images to the text's vector. With the default model: images whose labels
    mean what the query means (MiniLM), best first; none, rather than the least bad, when no photo
    passes the relevance floor. Either way a description meaning the query (DESCRIPTION_NO_MATCH) adds to the score."""
    model, table = models.image, models.table
    catalog_id = get_catalog(session, catalog).id
    query_vector = models.text.embed([query])[0]
    described = description_matches(
        session.connection(), catalog_id, models.text.model_id, query_vector, DESCRIPTION_NO_MATCH
    )
    scored: dict[int, tuple[Match, float, list[str]]] = {}  # image id -> row, score, reasons
    if model.labels is None:
        if not isinstance(model, TextAndImageModel):
            raise ValueError(f"{model.model_id} has neither labels nor a text tower to search with")
        floor = -np.inf  # see RELEVANCE_FLOOR
        vector = vector_text(model.embed_text([query])[0])
        for row in nearest(session.connection(), table, catalog_id, vector, k):
            scored[row.id] = (row, row.score, ["CLIP text-to-image similarity"])
    else:
        floor = RELEVANCE_FLOOR
        match = label_match(models.label_vectors @ query_vector)
        position = {label: index for index, label in enumerate(model.labels)}
        for row in catalog_labels(session.connection(), table, catalog_id):
            labels = row.labels or {}
            parts = {label: probability * match[position[label]] for label, probability in labels.items()}
            # why it matched: its labels that mean the query, most telling first (leaving out
            # those the model gives under 0.005, which would show as 0.00)
            shown = [label for label in sorted(parts, key=parts.__getitem__, reverse=True)
                     if parts[label] > 0 and round(labels[label], 2) > 0]
            reasons = [f"labels: {_labels(labels, shown)}"] if shown else []
            scored[row.id] = (row, sum(parts.values()), reasons)
    for row in described:
        # a photo outside CLIP's k nearest counts its description alone
        base, score, reasons = scored.get(row.id, (row, 0.0, []))
        strength = description_match(row.score)
        scored[row.id] = (base, score + strength, [f"description {strength:.2f}: {row.description}", *reasons])
    found = [_result(row, score, "; ".join(reasons)) for row, score, reasons in scored.values() if score >= floor]
    return sorted(found, key=lambda result: result.score, reverse=True)[:k]


def description_match(similarity: float) -> float:
    """How much a description means the query, 0 to 1 (see DESCRIPTION_NO_MATCH)."""
    return float(np.clip((similarity - DESCRIPTION_NO_MATCH) / (DESCRIPTION_FULL_MATCH - DESCRIPTION_NO_MATCH), 0, 1))


def label_match(similarity: NDArray[np.float32]) -> NDArray[np.float32]:
    """How much each label means the query, 0 to 1, from the cosine of each label name and
    the query (see NO_MATCH_Z)."""
    z = (similarity - similarity.mean()) / similarity.std()
    return np.clip((z - NO_MATCH_Z) / (FULL_MATCH_Z - NO_MATCH_Z), 0, 1)


def search_similar(session: Session, catalog: str, path: str, k: int, models: SearchModels) -> list[SearchResult]:
    """The k images nearest by cosine to the photo at `path` (relative to its source folder, or absolute)."""
    found_catalog = get_catalog(session, catalog)
    catalog_id, roots = found_catalog.id, found_catalog.source_directories
    real = os.path.realpath(path)
    root = next((root for root in roots if os.path.isabs(path) and real.startswith(root.rstrip("/") + "/")), None)
    relative = path if root is None else os.path.relpath(real, root)
    found = next(filter(None, (
        vectors_of(session.connection(), models.table, catalog_id, path=candidate, source_root=root)
        for candidate in (os.fsencode(relative), path_from_display(relative))  # as given, or as `export` shows it
    )), [])
    if not found:
        raise CatalogError(f"no photo read at {path!r} in {catalog!r} (paths as `lumina export` shows them)")
    if len(found) > 1:
        raise CatalogError(f"{path!r} is in {len(found)} of the source folders of {catalog!r}: give its absolute path")
    return _neighbours(session, models, catalog_id, *found[0], k)


def similar_to_image(session: Session, image_id: int, k: int, models: SearchModels) -> list[SearchResult] | None:
    """The same for an image id; None when that image has no vector from the model."""
    found = vectors_of(session.connection(), models.table, None, image_id=image_id)
    if not found:
        return None
    catalog_id = session.execute(text("SELECT catalog_id FROM images WHERE id = :i"), {"i": image_id}).scalar_one()
    return _neighbours(session, models, catalog_id, *found[0], k)


def _neighbours(
    session: Session, models: SearchModels, catalog_id: uuid.UUID, image_id: int, vector: str, k: int
) -> list[SearchResult]:
    rows = nearest(session.connection(), models.table, catalog_id, vector, k + 1)
    return [
        _result(row, row.score, f"labels: {_labels(row.labels)}" if row.labels else "image similarity")
        for row in rows
        if row.id != image_id
    ][:k]


def _labels(labels: dict[str, float], shown: list[str] | None = None) -> str:
    """`shown` (default: the most probable) with the image model's probability of each."""
    shown = sorted(labels, key=labels.__getitem__, reverse=True) if shown is None else shown
    return ", ".join(f"{label} {labels[label]:.2f}" for label in shown[:LABELS_SHOWN])


def _result(row: Match, score: float, reason: str) -> SearchResult:
    return SearchResult(row.id, shown(bytes(row.path)), round(float(score), 4), reason)
