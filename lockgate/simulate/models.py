"""The fixed model catalogue served on ``/v1/models``."""

from __future__ import annotations

from typing import Any

MODEL_IDS = ("sim-small", "sim-large", "sim-embed")
MODEL_CREATED = 1_700_000_000
OWNER = "lockgate-simulator"


def model_object(model_id: str) -> dict[str, Any]:
    return {"id": model_id, "object": "model", "created": MODEL_CREATED, "owned_by": OWNER}


def models_payload() -> dict[str, Any]:
    return {"object": "list", "data": [model_object(model_id) for model_id in MODEL_IDS]}
