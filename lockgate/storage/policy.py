"""Key and team policies between pydantic models and the JSON columns that hold them."""

from __future__ import annotations

from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from lockgate.config.models import BudgetConfig, LimitsConfig
from lockgate.storage.errors import InvalidRecord

__all__ = ["dump_budget", "dump_limits", "load_budget", "load_limits", "validated"]

Model = TypeVar("Model", bound=BaseModel)


def dump_limits(limits: LimitsConfig) -> dict[str, Any]:
    return limits.model_dump(mode="json")


def dump_budget(budget: BudgetConfig | None) -> dict[str, Any] | None:
    return None if budget is None else budget.model_dump(mode="json")


def load_limits(data: dict[str, Any], owner: str) -> LimitsConfig:
    return validated(LimitsConfig, data, owner)


def load_budget(data: dict[str, Any] | None, owner: str) -> BudgetConfig | None:
    return None if data is None else validated(BudgetConfig, data, owner)


def validated(model: type[Model], data: dict[str, Any], owner: str) -> Model:
    """`model` from `data`, or `InvalidRecord` naming `owner` and each mistake, on one line."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        mistakes = "; ".join(
            f"{'.'.join(str(part) for part in error['loc']) or 'value'}: {error['msg']}"
            for error in exc.errors()
        )
        raise InvalidRecord(f"invalid {owner}: {mistakes}") from None
