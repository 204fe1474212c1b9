"""Google Gemini: OpenAI-canonical requests served by `generateContent` (Gemini API or Vertex AI).

`request.py`/`messages.py`/`schema.py` build the upstream body, `response.py` and `stream.py`
translate answers back, `embeddings.py` covers embeddings, `errors.py` maps failures and
`adapter.py` puts them behind the `ProviderAdapter` protocol. Translation only: no I/O here.
"""

from lockgate.providers.gemini.adapter import (
    GEMINI_BASE_URL,
    GeminiAdapter,
    VertexLocation,
    vertex_base_url,
)
from lockgate.providers.gemini.stream import GeminiStreamParser

__all__ = [
    "GEMINI_BASE_URL",
    "GeminiAdapter",
    "GeminiStreamParser",
    "VertexLocation",
    "vertex_base_url",
]
