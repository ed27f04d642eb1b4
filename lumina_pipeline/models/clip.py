"""CLIP from weights the user already has (a local folder or Hugging Face cache), via
transformers; imported only when selected, and never downloading unless allowed."""

import numpy as np
from numpy.typing import NDArray

from lumina_pipeline.analysis.embedding import l2_normalize

# CLIP's own input normalisation (OpenAI's training statistics)
MEAN = np.array([0.48145466, 0.4578275, 0.40821073], dtype=np.float32)
STD = np.array([0.26862954, 0.26130258, 0.27577711], dtype=np.float32)


class ClipModel:
    labels = None  # CLIP searches text directly; it has no fixed label set

    def __init__(self, path: str, *, allow_download: bool = False):
        import torch
        from transformers import AutoTokenizer, CLIPModel

        self._torch = torch
        self._model = CLIPModel.from_pretrained(path, local_files_only=not allow_download).eval()
        self._tokenizer = AutoTokenizer.from_pretrained(path, local_files_only=not allow_download)
        self.model_id = model_id_of(path)
        self.dimensions = self._model.config.projection_dim
        self.logit_scale = self._model.logit_scale.exp().item()  # the softmax temperature CLIP was trained with

    def embed_images(self, pixels: NDArray[np.uint8]) -> tuple[NDArray[np.float32], None]:
        size = self._model.config.vision_config.image_size
        batch = self._torch.from_numpy(((pixels.astype(np.float32) / 255.0 - MEAN) / STD).transpose(0, 3, 1, 2))
        if batch.shape[-1] != size:
            batch = self._torch.nn.functional.interpolate(batch, size=(size, size), mode="bicubic")
        with self._torch.no_grad():
            vectors = self._model.get_image_features(pixel_values=batch)
        return l2_normalize(_tensor(vectors).numpy()), None

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
