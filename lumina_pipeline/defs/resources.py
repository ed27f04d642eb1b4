"""Resources: the catalog database, the thumbnail store, the image model and the vision
model that captions photos, bound from the environment."""

import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar, TypeVar

import dagster as dg
import numpy as np
from numpy.typing import NDArray
from pydantic import PrivateAttr
from sqlalchemy import Connection, Engine
from sqlalchemy.orm import Session

from lumina_pipeline.analysis.captions import CAPTION_SCHEMA, PROMPT, Caption, parse_caption
from lumina_pipeline.models import ImageModel, Labels, load_image_model
from lumina_pipeline.models.text import TextEncoder
from lumina_pipeline.storage.catalogs import list_catalogs
from lumina_pipeline.storage.database import make_engine
from lumina_pipeline.storage.thumbnails import read_thumbnail, save_thumbnails

if TYPE_CHECKING:  # imported by OllamaVision's methods: ollama and httpx, its HTTP client,
    import ollama  # took 0.2 s of every process that loads the code location

Found = TypeVar("Found")


class CatalogDatabase(dg.ConfigurableResource):
    """The PostgreSQL holding the catalog tables; one engine per run process."""

    url: str
    _engine: Engine = PrivateAttr()

    def setup_for_execution(self, context: dg.InitResourceContext) -> None:
        self._engine = make_engine(self.url)

    def teardown_after_execution(self, context: dg.InitResourceContext) -> None:
        self._engine.dispose()

    @property
    def engine(self) -> Engine:  # for work that commits as it goes (actions/runs.py, index_vectors)
        return self._engine

    @contextmanager
    def transaction(self) -> Iterator[Session]:
        """A session whose work commits together at the end of the block, or not at all."""
        with Session(self._engine) as session, session.begin():
            yield session

    def by_catalog(self, query: Callable[[Connection, uuid.UUID], Found]) -> dict[str, Found]:
        """`query` of each catalog, by catalog name, in one transaction."""
        with self.transaction() as session:
            return {c.name: query(session.connection(), c.id) for c in list_catalogs(session)}


class ThumbnailStore(dg.ConfigurableResource):
    """The folder of the thumbnails (`storage/thumbnails.py` owns its layout)."""

    root: str

    def save_all(self, catalog: str, shas: Iterable[str | None], jpegs: Iterable[bytes | None]) -> list[str | None]:
        return save_thumbnails(Path(self.root), catalog, shas, jpegs)

    def read(self, relative: str) -> bytes | None:
        return read_thumbnail(Path(self.root), relative)


class Embedder(dg.ConfigurableResource):
    """The image model: EfficientNet-Lite0 with packaged ImageNet weights (offline, the
    default) or CLIP from a local folder or Hugging Face cache (`clip_path`). Every vector is
    stored with its model id, in that model's own table. CLIP tags photos from a vocabulary
    (`tag_vocabulary`: a file of one tag per line; the packaged list when empty)."""

    cache_dir: str  # where the exported ONNX network is kept
    clip_path: str = ""
    tag_vocabulary: str = ""
    allow_download: bool = False
    # Images per inference. onnxruntime keeps the memory of its largest inference for the
    # session's life: about 0.2 GB at 16 images, 0.9 GB at 64, which took no less CPU time.
    batch_size: int = 16
    _model: ImageModel = PrivateAttr()

    def setup_for_execution(self, context: dg.InitResourceContext) -> None:
        self._model = load_image_model(Path(self.cache_dir), self.clip_path, self.allow_download, self.tag_vocabulary)

    @property
    def model(self) -> ImageModel:
        return self._model

    def embed(self, pixels: NDArray[np.uint8]) -> tuple[NDArray[np.float32], Labels | None]:
        return self._model.embed(pixels, self.batch_size)


class SentenceModel(dg.ConfigurableResource):
    """The packaged all-MiniLM-L6-v2, for descriptions searched by meaning; loaded on first
    use, so that a run with nothing to embed never loads it."""

    cache_dir: str  # where its ONNX export is kept, beside the image model's
    model_id: ClassVar[str] = TextEncoder.model_id
    _encoder: TextEncoder | None = PrivateAttr(default=None)

    def embed(self, texts: list[str]) -> NDArray[np.float32]:
        if not texts:
            return np.empty((0, 0), np.float32)
        if self._encoder is None:
            self._encoder = TextEncoder(Path(self.cache_dir))
        return self._encoder.embed(texts)


@dataclass(frozen=True)
class CaptionAnswer:
    caption: Caption | None
    error: str | None  # why there is no caption, after every attempt
    attempts: int


class OllamaVision(dg.ConfigurableResource):
    """A vision model served by Ollama (`url`, e.g. http://127.0.0.1:11434), asked for a
    caption of each photo's thumbnail. Without a url nothing is asked: `captions` skips.

    One request at a time per run; the `ollama` pool bounds the runs asking at once."""

    url: str = ""
    model: str = "moondream"
    timeout_seconds: float = 120.0  # per request: a CPU-only server takes tens of seconds per photo
    retries: int = 2  # after a timeout, a server error or an answer that is not the asked JSON
    backoff_seconds: float = 2.0  # before the first retry, doubled before each next one
    _client: "ollama.Client | None" = PrivateAttr(default=None)

    @property
    def configured(self) -> bool:
        return bool(self.url)

    def setup_for_execution(self, context: dg.InitResourceContext) -> None:
        if self.url:
            import ollama

            self._client = ollama.Client(host=self.url, timeout=self.timeout_seconds)

    def teardown_after_execution(self, context: dg.InitResourceContext) -> None:
        if self._client is not None:
            self._client.close()

    @property
    def client(self) -> "ollama.Client":
        if self._client is None:  # made for execution, and only where a url is configured
            raise RuntimeError("no Ollama server is configured (LUMINA_OLLAMA_URL)")
        return self._client

    def unavailable(self) -> str | None:
        """Why no photo can be captioned now (server unreachable, model not pulled), or None."""
        import httpx
        import ollama

        try:
            pulled = {entry.model for entry in self.client.list().models}
        except (ConnectionError, httpx.HTTPError, ollama.ResponseError) as error:
            return f"Ollama at {self.url} does not answer: {_reason(error, self.timeout_seconds)}"
        if not {self.model, f"{self.model}:latest"} & pulled:
            return f"model {self.model!r} is not pulled on Ollama at {self.url} (`ollama pull {self.model}`)"
        return None

    def caption(self, jpeg: bytes) -> CaptionAnswer:
        """Ask for the caption of one photo, retrying with backoff; never raises for the photo."""
        import httpx
        import ollama

        error = ""
        for attempt in range(self.retries + 1):
            if attempt:
                time.sleep(self.backoff_seconds * 2 ** (attempt - 1))
            try:
                response = self.client.chat(
                    model=self.model,
                    messages=[{"role": "user", "content": PROMPT, "images": [jpeg]}],
                    format=CAPTION_SCHEMA,
                    options={"temperature": 0},  # the same photo gets the same words
                )
                return CaptionAnswer(parse_caption(response.message.content or ""), None, attempt + 1)
            except ollama.ResponseError as failure:
                error = _reason(failure, self.timeout_seconds)
                if failure.status_code < 500:  # a refused request (model gone, bad input) fails again
                    return CaptionAnswer(None, error, attempt + 1)
            except (ValueError, ConnectionError, httpx.HTTPError) as failure:
                error = _reason(failure, self.timeout_seconds)
        return CaptionAnswer(None, error, self.retries + 1)


def _reason(error: Exception, timeout_seconds: float) -> str:
    import httpx
    import ollama

    if isinstance(error, httpx.TimeoutException):
        return f"no answer within {timeout_seconds:g} s"
    if isinstance(error, ollama.ResponseError):
        return f"Ollama answered {error.status_code}: {error.error}"
    if isinstance(error, (ConnectionError, httpx.TransportError)):
        return f"cannot reach Ollama ({type(error).__name__})"
    return str(error)


class FolderWatch(dg.ConfigurableResource):
    """How long one tick of the folder-change sensor may walk before the rest of the walk
    waits for the next tick (Dagster cancels a tick at 60 s)."""

    tick_budget_seconds: float = 40.0


@dg.definitions
def resources() -> dg.Definitions:
    # `lumina` sets these variables (embedded server, folders under `$LUMINA_HOME`, no CLIP,
    # the packaged tag vocabulary, no Ollama).
    return dg.Definitions(
        resources={
            "database": CatalogDatabase(url=dg.EnvVar("LUMINA_DATABASE_URL")),
            "thumbnails": ThumbnailStore(root=dg.EnvVar("LUMINA_THUMBNAIL_DIR")),
            "folder_watch": FolderWatch(),
            "embedder": Embedder(
                cache_dir=dg.EnvVar("LUMINA_MODEL_CACHE"),
                clip_path=dg.EnvVar("LUMINA_CLIP_MODEL"),
                tag_vocabulary=dg.EnvVar("LUMINA_TAG_VOCABULARY"),
            ),
            "vision": OllamaVision(url=dg.EnvVar("LUMINA_OLLAMA_URL"), model=dg.EnvVar("LUMINA_OLLAMA_MODEL")),
            "sentences": SentenceModel(cache_dir=dg.EnvVar("LUMINA_MODEL_CACHE")),
        }
    )
