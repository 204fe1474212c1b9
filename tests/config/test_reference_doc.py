"""docs/configuration.md carries the reference generated from the config models."""

from __future__ import annotations

from pathlib import Path

from lockgate.config.models import GatewayConfig
from lockgate.config.reference import BEGIN, END, render_reference

DOC = Path(__file__).resolve().parents[2] / "docs" / "configuration.md"


def test_reference_in_docs_is_current() -> None:
    text = DOC.read_text(encoding="utf-8")
    generated = text.split(BEGIN, 1)[1].split(END, 1)[0].strip()
    assert generated == render_reference().strip(), (
        "docs/configuration.md is stale: regenerate it with scripts/gen-docs"
    )


def test_reference_names_every_key() -> None:
    reference = render_reference()
    for section in ("server", "storage", "routing", "observability"):
        model = GatewayConfig.model_fields[section].annotation
        assert model is not None
        for key in model.model_fields:  # type: ignore[union-attr]
            assert f"| `{key}` |" in reference, f"{section}.{key} missing from the reference"
