"""Search a catalog by meaning (`lumina search`) and by example (`lumina similar`)."""

import hashlib
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import numpy as np
from sqlalchemy import select
from sqlalchemy.orm import Session

from lumina_pipeline.analysis.embedding import label_match_scores
from lumina_pipeline.analysis.files import display_path
from lumina_pipeline.models import load_image_model
from lumina_pipeline.models.text import TextEncoder
from lumina_pipeline.storage.catalogs import CatalogError, get_catalog
from lumina_pipeline.storage.embeddings import catalog_labels, embeddings_table, nearest, vector_of
from lumina_pipeline.storage.models import Image

LABELS_SHOWN = 3


@dataclass
class SearchModels:
    """The models a search needs, loaded on first use and kept (a server answers many)."""

    cache_dir: Path
    clip_path: str = ""

    @cached_property
    def image(self):
        return load_image_model(Path(self.cache_dir), self.clip_path)

    @cached_property
    def table(self):
        return embeddings_table(self.image.model_id, self.image.dimensions)

    @cached_property
    def text(self) -> TextEncoder:
        return TextEncoder()

    @cached_property
    def label_vectors(self) -> np.ndarray:
        """MiniLM vectors of the label names, computed once and kept beside the model."""
        labels = self.image.labels
        digest = hashlib.sha256("\n".join(labels).encode()).hexdigest()[:12]
        cached = Path(self.cache_dir) / f"label-vectors-minilm-{digest}.npy"
        if not cached.exists():
            cached.parent.mkdir(parents=True, exist_ok=True)
            np.save(cached, self.text.embed(labels))
        return np.load(cached)


def search_text(session: Session, catalog: str, query: str, k: int, models: SearchModels) -> list[dict]:
    """With CLIP: nearest images to the text's vector. With the default model: images whose
    top labels mean what the query means (MiniLM), weighted by the labels' probabilities."""
    model, table = models.image, models.table
    catalog_id = get_catalog(session, catalog).id
    if model.labels is None:
        vector = _text(model.embed_text([query])[0])
        rows = nearest(session.connection(), table, catalog_id, vector, k)
        return [_result(row, row["score"], "CLIP text-to-image similarity") for row in rows]
    similarity = models.label_vectors @ models.text.embed([query])[0]
    rows = catalog_labels(session.connection(), table, catalog_id)
    position = {label: index for index, label in enumerate(model.labels)}
    index = np.array([[position[label] for label in row["labels"]] for row in rows], dtype=np.int64).reshape(len(rows), -1)
    probability = np.array([list(row["labels"].values()) for row in rows], dtype=np.float32).reshape(len(rows), -1)
    scores, reasons = label_match_scores(similarity, index, probability)
    best = np.argsort(-scores)[:k]
    return [
        _result(rows[i], float(scores[i]), f"labels: {_labels(rows[i]['labels'], model.labels[reasons[i]])}")
        for i in best
    ]


def search_similar(session: Session, catalog: str, path: str, k: int, models: SearchModels) -> list[dict]:
    """The k images nearest to the photo at `path` (relative to its source folder), by cosine."""
    catalog_id = get_catalog(session, catalog).id
    found = vector_of(session.connection(), models.table, catalog_id, path=path.encode())
    if found is None:
        raise CatalogError(f"no embedded photo at {path!r} in {catalog!r} (paths as `lumina export` shows them)")
    return _neighbours(session, models, catalog_id, *found, k)


def similar_to_image(session: Session, image_id: int, k: int, models: SearchModels) -> list[dict] | None:
    """The same for an image id; None when that image has no vector from the model."""
    found = vector_of(session.connection(), models.table, None, image_id=image_id)
    if found is None:
        return None
    catalog_id = session.connection().execute(select(Image.catalog_id).where(Image.id == image_id)).scalar_one()
    return _neighbours(session, models, catalog_id, *found, k)


def _neighbours(session: Session, models: SearchModels, catalog_id, image_id: int, vector: str, k: int) -> list[dict]:
    rows = nearest(session.connection(), models.table, catalog_id, vector, k + 1)
    return [
        _result(row, row["score"], f"labels: {_labels(row['labels'])}" if row["labels"] else "image similarity")
        for row in rows
        if row["id"] != image_id
    ][:k]


def _labels(labels: dict[str, float], first: str | None = None) -> str:
    ordered = sorted(labels, key=lambda label: (label != first, -labels[label]))[:LABELS_SHOWN]
    return ", ".join(f"{label} {labels[label]:.2f}" for label in ordered)


def _result(row: dict, score: float, reason: str) -> dict:
    """`image_id` is for the API; the CLI prints the rest."""
    return {"image_id": row["id"], "path": display_path(bytes(row["path"]))[0], "score": round(float(score), 4),
            "reason": reason}


def _text(vector: np.ndarray) -> str:
    return "[" + ",".join(f"{value:.7g}" for value in vector) + "]"
