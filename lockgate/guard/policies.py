"""Which guardrails apply to a caller: its key's, else its team's, else the gateway's."""

from __future__ import annotations

from lockgate.auth.policy import Principal
from lockgate.config.models import GatewayConfig, GuardrailsConfig
from lockgate.guard.checks import Guard

__all__ = ["Guards"]


class Guards:
    """Each declared key or team with its own `guardrails` replaces the gateway's whole set."""

    def __init__(self, config: GatewayConfig) -> None:
        self._default = _active(config.guardrails)
        self._teams = {t.name: _active(t.guardrails) for t in config.teams if t.guardrails}
        self._keys = {k.name: _active(k.guardrails) for k in config.keys if k.guardrails}

    def for_principal(self, principal: Principal) -> Guard | None:
        """None when no rule applies (the common case costs one or two dict lookups)."""
        if self._keys and principal.kind == "key" and principal.name in self._keys:
            return self._keys[principal.name]
        if self._teams and principal.team is not None and principal.team in self._teams:
            return self._teams[principal.team]
        return self._default


def _active(config: GuardrailsConfig) -> Guard | None:
    return Guard(config) if config.input or config.output else None
