"""Provider simulator: a local fake LLM provider speaking the OpenAI wire format.

Used as the upstream in tests, demos and the load benchmark.

Endpoints: ``POST /v1/chat/completions`` (JSON and SSE), ``POST /v1/embeddings``,
``GET /v1/models[/{id}]`` (also under ``/openai/v1``), Azure-style
``POST /openai/deployments/{deployment}/chat/completions|embeddings`` (the
deployment is the model), Anthropic's ``POST /v1/messages`` (``anthropic_*`` modules),
Gemini's ``POST /v1beta/models/{model}:generateContent|streamGenerateContent|batchEmbedContents``
and Vertex AI's ``.../publishers/google/models/{model}:...`` (``gemini_*`` modules),
plus ``GET /sim/stats``, ``GET /sim/echoes`` and ``POST /sim/reset``.
Any ``Authorization: Bearer ...`` or ``api-key`` header is accepted; none is 401.
``x-sim-echo-headers: 1`` adds a ``"simulator"`` field (headers, path, query,
body) to non-streaming JSON answers and logs the request for ``/sim/echoes``.

Directives script a single request. Sources, merged with later winning: the
model suffix ``sim-small?status=500&retry_after=2``, the body field
``"simulate": {"status": 500}``, the header ``x-simulate: status=500;retry_after=2``.

==================  ==========================================================
``latency_ms``      delay before the response headers (overrides settings)
``tokens_per_s``    stream pacing (overrides settings; 0 = unpaced)
``tokens``          words in the reply (one word = one token = one chunk)
``content``         exact reply text
``content_times``   with ``key`` (default: the model): ``content`` answers the
                    first N requests only, later ones get the usual reply
``tool_call``       ``1`` (first/``tool_choice`` tool) or a function name
``status``          answer with this 4xx/5xx and an OpenAI-shaped error
``retry_after``     seconds, sent as ``retry-after`` and ``retry-after-ms``
``fail_times``      with ``key`` (default: the model): the first N requests
                    fail with ``status`` (default 500), later ones succeed
``hang``            never answer; counted as cancelled once the client leaves
``reset``           drop the connection with a TCP RST, no response at all
``truncate_after``  stream: cut the connection after N content chunks
``error_after``     stream: send an in-band ``{"error": ...}`` event after N
``stall_after``     stream: go silent after N chunks, connection kept open
==================  ==========================================================

Stream faults fire when the content runs out if N exceeds it, so they always
happen. Unknown keys and bad values answer 400 naming the directive. With
several workers each process has its own ``/sim/stats`` and ``fail_times`` state.

Import from the modules (``server``, ``settings``): this package imports nothing, so the gateway
can read the simulator's settings without loading the simulator.
"""
