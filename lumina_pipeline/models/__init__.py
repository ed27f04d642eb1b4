"""Image and text models, loaded from local files only (packages or a user's own weights).
`load_image_model` gives the configured `ImageModel` to the `embeddings` asset and to search."""

import functools
import os
import warnings
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np
from numpy.typing import NDArray

# What CLIP tags photos from unless the user gives a list of their own (one tag per line).
TAG_VOCABULARY = Path(__file__).parent / "tag_vocabulary.txt"

Labels = list[dict[str, float]]  # per image, its most probable labels and their probabilities
Tags = list[list[tuple[str, float]]]  # per image, the (tag, probability) pairs confident enough to keep


class ImageModel(Protocol):
    """What the `embeddings` asset and search ask of an image model."""

    model_id: str  # names the table of its vectors: two models' vectors never mix
    dimensions: int
    labels: list[str] | None  # a classifier's labels, through which search finds photos; None for CLIP
    tag_source: str  # `image_tags.source` of its tags: `model` (its labels) or `openclip` (a vocabulary)

    def embed(self, pixels: NDArray[np.uint8], batch_size: int) -> tuple[NDArray[np.float32], Labels | None]:
        """(N, 224, 224, 3) RGB -> (N, dimensions) unit vectors, `batch_size` images per
        inference; and each image's most probable labels when the model has labels."""
        ...

    def tags(self, vectors: NDArray[np.float32], labels: Labels | None) -> Tags:
        """Per image, the tags it shows, from what `embed` returned."""
        ...


@runtime_checkable
class TextAndImageModel(ImageModel, Protocol):
    """An image model with a text tower (CLIP): search places the query in its images' space."""

    def embed_text(self, texts: list[str]) -> NDArray[np.float32]:
        """Unit vectors, one per text, comparable with the images' vectors."""
        ...


def batches(pixels: NDArray[np.uint8], batch_size: int) -> list[NDArray[np.uint8]]:
    """`pixels` cut into batches; no pixels make one empty batch, so that outputs keep their shape."""
    return [pixels[start : start + batch_size] for start in range(0, max(len(pixels), 1), batch_size)]


@functools.cache
def load_image_model(
    cache_dir: Path, clip_path: str = "", allow_download: bool = False, tag_vocabulary: str = ""
) -> ImageModel:
    """CLIP when the user points at weights (tagging from `tag_vocabulary`, a file of one tag
    per line, or the packaged list), else EfficientNet-Lite0 (offline, packaged).

    Loaded once per process: `lumina run` executes many runs in one process, and a session
    made per run kept its memory arena (about 0.9 GB at 64 images per inference) alive until
    the run's reference cycles inside Dagster were collected, so each batch added one."""
    if clip_path:
        from lumina_pipeline.models.clip import ClipModel

        return ClipModel(clip_path, Path(tag_vocabulary or TAG_VOCABULARY), allow_download=allow_download)
    from lumina_pipeline.models.efficientnet import EfficientNetModel

    return EfficientNetModel(cache_dir)


def onnx_session(path: Path):
    """An onnxruntime session of an exported network, on the CPU, logging only errors.

    It computes with OMP_NUM_THREADS threads where that is set, as `lumina run` does for each
    of its batch workers (its share of the cores); else with onnxruntime's default, a thread per
    core, which two processes inferring at once on the same cores would fight over."""
    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.log_severity_level = 3
    options.intra_op_num_threads = int(os.environ.get("OMP_NUM_THREADS", 0))  # 0: onnxruntime's default
    return onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def export_onnx(path: Path, network: Any, example: Any, inputs: dict[str, dict], outputs: dict[str, dict]) -> None:
    """Export a torch network to ONNX at `path`; `inputs` and `outputs` map names to their
    dynamic axes. Written to a file of this process's own, then renamed: two first runs at
    once each write their own."""
    import torch

    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(f".{os.getpid()}.part")
    # the exporter's deprecation notes are for torch's developers, not our users
    with warnings.catch_warnings(action="ignore"):
        torch.onnx.export(network, example, str(partial), input_names=list(inputs), output_names=list(outputs),
                          dynamic_axes=inputs | outputs, dynamo=False)
    partial.replace(path)
