"""CLIP from weights the user already has (a local folder or Hugging Face cache), via
transformers; imported only when selected, and never downloading unless allowed."""

from functools import cached_property
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from lumina_pipeline.analysis.embedding import l2_normalize, vocabulary_tags
from lumina_pipeline.models import TAG_VOCABULARY, Labels, Tags, batches

# CLIP's own input normalisation (OpenAI's training statistics)
MEAN = np.array([0.48145466, 0.4578275, 0.40821073], dtype=np.float32)
STD = np.array([0.26862954, 0.26130258, 0.27577711], dtype=np.float32)


class ClipModel:
    """An `ImageModel` without labels: its text tower places words in its images' space, so
    search compares the query with the photos, and photos are tagged from a vocabulary."""

    labels: list[str] | None = None
    tag_source = "openclip"

    def __init__(self, path: str, vocabulary: Path = TAG_VOCABULARY, *, allow_download: bool = False):
        import torch
        from transformers import AutoTokenizer, CLIPModel, CLIPVisionConfig

        self._torch = torch
        self._model = CLIPModel.from_pretrained(path, local_files_only=not allow_download).eval()
        self._tokenizer = AutoTokenizer.from_pretrained(path, local_files_only=not allow_download)
        self.model_id = model_id_of(path)
        self.dimensions = self._model.visual_projection.out_features
        vision = self._model.config.vision_config
        if not (isinstance(vision, CLIPVisionConfig) and isinstance(vision.image_size, int)):
            raise ValueError(f"{path}: not a CLIP model whose vision tower takes square images")
        self.input_side = vision.image_size
        self.logit_scale = self._model.logit_scale.exp().item()  # the softmax temperature CLIP was trained with
        self.vocabulary = [line.strip() for line in vocabulary.read_text(encoding="utf-8").splitlines() if line.strip()]

    def embed(self, pixels: NDArray[np.uint8], batch_size: int) -> tuple[NDArray[np.float32], None]:
        return np.concatenate([self._embed_batch(batch) for batch in batches(pixels, batch_size)]), None

    def _embed_batch(self, pixels: NDArray[np.uint8]) -> NDArray[np.float32]:
        if not len(pixels):  # the vision tower cannot reshape an empty batch
            return np.empty((0, self.dimensions), np.float32)
        side = self.input_side
        batch = self._torch.from_numpy(((pixels.astype(np.float32) / 255.0 - MEAN) / STD).transpose(0, 3, 1, 2))
        if batch.shape[-1] != side:
            batch = self._torch.nn.functional.interpolate(batch, size=(side, side), mode="bicubic")
        with self._torch.no_grad():
            vectors = self._model.get_image_features(pixel_values=batch)
        return l2_normalize(_tensor(vectors).numpy())

    def tags(self, vectors: NDArray[np.float32], labels: Labels | None) -> Tags:
        """Zero-shot classification over the vocabulary (see `vocabulary_tags`)."""
        return vocabulary_tags(vectors @ self._vocabulary_vectors.T, self.vocabulary, self.logit_scale)

    @cached_property  # on first use: search, which loads CLIP too, never tags
    def _vocabulary_vectors(self) -> NDArray[np.float32]:
        return self.embed_text([f"a photo of {tag}" for tag in self.vocabulary])

    def embed_text(self, texts: list[str]) -> NDArray[np.float32]:
        tokens = self._tokenizer(texts, padding=True, truncation=True, return_tensors="pt")
        with self._torch.no_grad():
            vectors = self._model.get_text_features(**tokens)
        return l2_normalize(_tensor(vectors).numpy())


def model_id_of(path: str) -> str:
    """`clip-` and the weights' folder or Hugging Face repository name: vectors of two
    different CLIP models land in two tables."""
    name = path.rstrip("/").rsplit("/", 1)[-1].lower()
    return name if name.startswith("clip") else f"clip-{name}"


def _tensor(output):
    """transformers 5 returns a model output object where 4.x returned the tensor."""
    return getattr(output, "pooler_output", output)
