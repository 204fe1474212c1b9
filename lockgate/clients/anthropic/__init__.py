"""Anthropic's Messages API as a client format: requests in, messages and events out.

`schema.py` validates a request, `request.py` turns it into the canonical (OpenAI) request,
`response.py` and `stream.py` turn canonical answers back, `passthrough.py` watches a stream that an
Anthropic target answers natively. Translation only, no I/O.
"""

from lockgate.clients.anthropic.passthrough import NativeStreamWatch, native_has_content
from lockgate.clients.anthropic.request import Translated, to_canonical
from lockgate.clients.anthropic.response import to_message
from lockgate.clients.anthropic.stream import MessageStreamTranslator, in_band_error

__all__ = [
    "MessageStreamTranslator",
    "NativeStreamWatch",
    "Translated",
    "in_band_error",
    "native_has_content",
    "to_canonical",
    "to_message",
]
