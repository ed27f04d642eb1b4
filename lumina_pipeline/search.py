"""Search a catalog by meaning (`lumina search`) and by example (`lumina similar`)."""

import hashlib
from pathlib import Path

import numpy as np
from sqlalchemy.orm import Session

from lumina_pipeline.analysis.embedding import label_match_scores
from lumina_pipeline.analysis.files import display_path
from lumina_pipeline.models import load_image_model
from lumina_pipeline.models.text import TextEncoder
from lumina_pipeline.storage.catalogs import CatalogError, get_catalog
from lumina_pipeline.storage.embeddings import catalog_labels, embeddings_table, nearest, vector_of

LABELS_SHOWN = 3


def search_text(session: Session, catalog: str, query: str, k: int, *, cache_dir: Path, clip_path: str = "") -> list[dict]:
    """With CLIP: nearest images to the text's vector. With the default model: images whose
    top labels mean what the query means (MiniLM), weighted by the labels' probabilities."""
    model = load_image_model(cache_dir, clip_path)
    table = embeddings_table(model.model_id, model.dimensions)
    catalog_id = get_catalog(session, catalog).id
    if model.labels is None:
        vector = _text(model.embed_text([query])[0])
        rows = nearest(session.connection(), table, catalog_id, vector, k)
        return [_result(row["path"], row["score"], "CLIP text-to-image similarity") for row in rows]
    encoder = TextEncoder()
    similarity = _label_vectors(encoder, model.labels, cache_dir) @ encoder.embed([query])[0]
    rows = catalog_labels(session.connection(), table, catalog_id)
    position = {label: index for index, label in enumerate(model.labels)}
    index = np.array([[position[label] for label in row["labels"]] for row in rows], dtype=np.int64).reshape(len(rows), -1)
    probability = np.array([list(row["labels"].values()) for row in rows], dtype=np.float32).reshape(len(rows), -1)
    scores, reasons = label_match_scores(similarity, index, probability)
    best = np.argsort(-scores)[:k]
    return [
        _result(rows[i]["path"], float(scores[i]), f"labels: {_labels(rows[i]['labels'], model.labels[reasons[i]])}")
        for i in best
    ]


def search_similar(session: Session, catalog: str, path: str, k: int, *, cache_dir: Path, clip_path: str = "") -> list[dict]:
    """The k images nearest to the photo at `path` (relative to its source folder), by cosine."""
    model = load_image_model(cache_dir, clip_path)
    table = embeddings_table(model.model_id, model.dimensions)
    catalog_id = get_catalog(session, catalog).id
    vector = vector_of(session.connection(), table, catalog_id, path.encode())
    if vector is None:
        raise CatalogError(f"no embedded photo at {path!r} in {catalog!r} (paths as `lumina export` shows them)")
    rows = nearest(session.connection(), table, catalog_id, vector, k + 1)
    return [
        _result(row["path"], row["score"], f"labels: {_labels(row['labels'])}" if row["labels"] else "image similarity")
        for row in rows
        if bytes(row["path"]) != path.encode()
    ][:k]


def _label_vectors(encoder: TextEncoder, labels: list[str], cache_dir: Path) -> np.ndarray:
    """MiniLM vectors of the label names, computed once and kept beside the model."""
    digest = hashlib.sha256("\n".join(labels).encode()).hexdigest()[:12]
    cached = Path(cache_dir) / f"label-vectors-minilm-{digest}.npy"
    if not cached.exists():
        cached.parent.mkdir(parents=True, exist_ok=True)
        np.save(cached, encoder.embed(labels))
    return np.load(cached)


def _labels(labels: dict[str, float], first: str | None = None) -> str:
    ordered = sorted(labels, key=lambda label: (label != first, -labels[label]))[:LABELS_SHOWN]
    return ", ".join(f"{label} {labels[label]:.2f}" for label in ordered)


def _result(path, score: float, reason: str) -> dict:
    return {"path": display_path(bytes(path))[0], "score": round(float(score), 4), "reason": reason}


def _text(vector: np.ndarray) -> str:
    return "[" + ",".join(f"{value:.7g}" for value in vector) + "]"
