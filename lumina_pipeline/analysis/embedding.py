"""Model inputs from the one reduced decode, and the arithmetic of vectors and labels.

NumPy only: the models themselves run in `lumina_pipeline.models`."""

import numpy as np
from numpy.typing import NDArray
from PIL import Image

INPUT_SIZE = 224
RESIZE_SHORT_SIDE = 256


def model_input(image: Image.Image) -> NDArray[np.uint8]:
    """(224, 224, 3) RGB: the ImageNet preprocessing both EfficientNet-Lite and CLIP were
    trained with (short side to 256, bicubic, centre crop 224), done as one resize of the
    crop's source box, which reads fewer pixels than resizing all and cropping after."""
    rgb = image if image.mode == "RGB" else image.convert("RGB")
    side = min(rgb.size) * INPUT_SIZE / RESIZE_SHORT_SIDE
    left, top = (rgb.width - side) / 2, (rgb.height - side) / 2
    box = (left, top, left + side, top + side)
    return np.asarray(rgb.resize((INPUT_SIZE, INPUT_SIZE), Image.Resampling.BICUBIC, box=box))


def stack_inputs(inputs: list[bytes]) -> NDArray[np.uint8]:
    """Raw model inputs (model_input(...).tobytes()) back into one (N, 224, 224, 3) array."""
    return np.frombuffer(b"".join(inputs), dtype=np.uint8).reshape(-1, INPUT_SIZE, INPUT_SIZE, 3)


def l2_normalize(vectors: NDArray[np.floating]) -> NDArray[np.float32]:
    norms = np.linalg.norm(vectors, axis=-1, keepdims=True)
    return (vectors / np.maximum(norms, 1e-12)).astype(np.float32)


def softmax(logits: NDArray[np.floating]) -> NDArray[np.float32]:
    shifted = np.exp(logits - logits.max(axis=-1, keepdims=True))
    return (shifted / shifted.sum(axis=-1, keepdims=True)).astype(np.float32)


def top_labels(probabilities: NDArray[np.float32], labels: list[str], k: int = 10) -> list[dict[str, float]]:
    """The k most probable labels of each image, as {label: probability}."""
    best = np.argsort(-probabilities, axis=1)[:, :k]
    return [
        {labels[i]: round(float(row[i]), 4) for i in indices} for row, indices in zip(probabilities, best, strict=True)
    ]


TAG_CONFIDENCE = 0.3  # a label becomes a tag when the model gives it at least this probability


def zero_shot_tags(labels: list[dict[str, float]]) -> list[list[tuple[str, float]]]:
    """Per image, the labels at or above TAG_CONFIDENCE (a softmax gives at most three)."""
    return [[(label, p) for label, p in image.items() if p >= TAG_CONFIDENCE] for image in labels]


def vocabulary_tags(similarity: NDArray[np.float32], vocabulary: list[str],
                    logit_scale: float) -> list[list[tuple[str, float]]]:
    """CLIP zero-shot classification (Radford et al. 2021, "Learning Transferable Visual
    Models From Natural Language Supervision"): per image, the softmax over the vocabulary of
    the cosine similarities (N, V) times the model's logit scale; the tags at or above
    TAG_CONFIDENCE, most probable first."""
    probabilities = softmax(similarity * logit_scale)
    return [
        [(vocabulary[i], round(float(row[i]), 4)) for i in np.argsort(-row) if row[i] >= TAG_CONFIDENCE]
        for row in probabilities
    ]
