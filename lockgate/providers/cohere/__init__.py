"""Cohere's v2 chat and embed API behind the OpenAI-shaped canonical form."""

from lockgate.providers.cohere.adapter import COHERE_BASE_URL, CohereAdapter
from lockgate.providers.cohere.stream import CohereStreamParser

__all__ = ["COHERE_BASE_URL", "CohereAdapter", "CohereStreamParser"]
