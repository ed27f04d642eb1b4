"""Image and text models, loaded from local files only (packages or a user's own weights).

`load_image_model` gives the configured backend; both answer `embed_images` with
L2-normalised vectors, plus label probabilities when the model has labels.
"""

from pathlib import Path

from lumina_pipeline.models.clip import ClipModel
from lumina_pipeline.models.efficientnet import EfficientNetModel

# What CLIP tags photos from unless the user gives a list of their own (one tag per line).
TAG_VOCABULARY = Path(__file__).parent / "tag_vocabulary.txt"


def load_image_model(cache_dir: Path, clip_path: str = "", allow_download: bool = False):
    """CLIP when the user points at weights, else EfficientNet-Lite0 (offline, packaged)."""
    if clip_path:
        return ClipModel(clip_path, allow_download=allow_download)
    return EfficientNetModel(cache_dir)
