"""What a config change would change on a running gateway: `lockgate config diff`.

Both sides are first reduced to a `ConfigSnapshot`: the effective config as JSON (every default
filled in) with each secret replaced by a keyed fingerprint, and each prompt as the SHA-256 of
its version files plus its labels. A running gateway serves its snapshot at `GET /admin/config`;
the command builds one from a file the same way. `compare` works on snapshots only, so it never
holds a secret, and what it reports masks the fingerprints as well: a changed secret shows as
"changed", nothing more. `diff_render` prints the changes (text, Markdown, JSON).
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Literal
from urllib.parse import unquote, urlsplit

import semver
from pydantic import BaseModel, Field, JsonValue, SecretStr
from pydantic_core import to_jsonable_python

from lockgate.config.models import GatewayConfig, ProviderConfig

if TYPE_CHECKING:
    from lockgate.prompts.registry import PromptRegistry

__all__ = [
    "OFFLINE_KEY",
    "RESTART_ONLY",
    "CanaryLabel",
    "Change",
    "ConfigSnapshot",
    "PromptFiles",
    "compare",
    "fingerprint",
    "snapshot",
    "with_overrides",
]

SECRET_MARK = "***hmac-sha256:"
_FINGERPRINT = re.compile(r"\*\*\*hmac-sha256:[0-9a-f]{16}")
OFFLINE_KEY = b"lockgate config diff"
"""Fingerprint key of an offline diff (`--against`): both snapshots are made on this machine."""

RESTART_ONLY = (
    "server.listen",
    "server.workers",
    "storage",
    "observability.otlp_endpoint",
    "observability.trace_sample_ratio",
    "observability.service_name",
)
"""What `lockgate.app._restart_only_changes` refuses to reload (a test keeps the two in step)."""

_SECRET_VALUES: Mapping[type[BaseModel], frozenset[str]] = {
    ProviderConfig: frozenset({"headers"}),
}
"""Plain `dict[str, str]` fields whose values are credentials (their names are shown)."""
_SECRET_QUERY = re.compile(r"(?i)key|token|secret|passw|pwd|sig|auth|credential|code")
"""URL query parameters whose values are masked (`?api-key=...`, `?sig=...`)."""

_COLLECTIONS: Mapping[str, tuple[str | None, str]] = {
    "providers": (None, "name"),
    "models": (None, "name"),
    "teams": (None, "name"),
    "keys": (None, "name"),
    "apis": (None, "path"),
    "auth": ("oidc", "issuer"),
}
"""Sections holding named items, compared item by item: section -> (sub-key, identifying field)."""


# -- snapshots ------------------------------------------------------------------------------------


class CanaryLabel(BaseModel):
    """A label taking `weight` percent of a prompt's default calls."""

    version: str
    weight: int


class PromptFiles(BaseModel):
    versions: dict[str, str] = Field(description="Version -> hex SHA-256 of its file.")
    labels: dict[str, str | CanaryLabel] = Field(
        description="Label -> version (or a canary: version and weight), in labels.yaml order."
    )


class ConfigSnapshot(BaseModel):
    """A gateway's effective config and prompt files, secrets redacted: what `compare` takes."""

    config: dict[str, JsonValue] = Field(
        description=(
            "The config as `lockgate config schema` describes it, defaults filled in; each secret "
            "(and each credential in a URL) is `***hmac-sha256:` and 16 hex digits of its "
            "HMAC-SHA256 keyed with the admin key, so a change shows without revealing it."
        )
    )
    prompts: dict[str, PromptFiles] = Field(description="The prompts folder, by prompt name.")
    source: str | None = Field(None, description="The config file (null: not from a file).")
    overrides: dict[str, JsonValue] = Field(
        default_factory=dict,
        description="`server` settings given to `lockgate serve`: they win over the file.",
    )


def fingerprint(secret: str, key: bytes) -> str:
    """`***hmac-sha256:` and 16 hex digits of HMAC-SHA256(key, secret).

    Keyed (a gateway uses its admin key) rather than a plain hash: whoever reads a snapshot
    without the key cannot test guesses of a weak secret, such as a database password.
    """
    digest = hmac.new(key, secret.encode(), hashlib.sha256).hexdigest()
    return SECRET_MARK + digest[:16]


def snapshot(
    config: GatewayConfig,
    registry: PromptRegistry | None,
    *,
    key: bytes,
    source: str | None = None,
    overrides: Iterable[str] = (),
) -> ConfigSnapshot:
    """The comparable, redacted form of a config and its prompt files.

    `overrides` names the `server` settings that came from the command line, not the file.
    """
    redacted = _Redactor(key).model(config)
    server = redacted.get("server")
    pinned = (
        {name: server[name] for name in overrides if name in server}
        if isinstance(server, dict)
        else {}
    )
    prompts = _prompt_files(registry) if registry is not None else {}
    return ConfigSnapshot(config=redacted, prompts=prompts, source=source, overrides=pinned)


def with_overrides(snap: ConfigSnapshot, overrides: Mapping[str, JsonValue]) -> ConfigSnapshot:
    """`snap` with `server` settings replaced, as a reload re-applies a gateway's overrides."""
    server = snap.config.get("server")
    if not overrides or not isinstance(server, dict):
        return snap
    config = {**snap.config, "server": {**server, **overrides}}
    return snap.model_copy(update={"config": config})


class _Redactor:
    def __init__(self, key: bytes) -> None:
        self._key = key

    def secret(self, text: str) -> str:
        return fingerprint(text, self._key)

    def model(self, model: BaseModel) -> dict[str, JsonValue]:
        out: dict[str, JsonValue] = {}
        secret_values = _SECRET_VALUES.get(type(model), frozenset())
        for name, info in type(model).model_fields.items():
            value = getattr(model, name)
            if name in secret_values and isinstance(value, dict):
                out[info.alias or name] = {str(k): self.secret(str(v)) for k, v in value.items()}
            else:
                out[info.alias or name] = self.value(value)
        return out

    def value(self, value: object) -> JsonValue:
        if isinstance(value, SecretStr):
            return self.secret(value.get_secret_value())
        if isinstance(value, BaseModel):
            return self.model(value)
        if isinstance(value, dict):
            return {str(k): self.value(v) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return [self.value(item) for item in value]
        if isinstance(value, str):
            return self.url(value)
        if value is None or isinstance(value, bool | int | float):
            return value
        plain: JsonValue = to_jsonable_python(value)  # datetimes
        return plain

    def url(self, text: str) -> str:
        """`text` with the credentials of a URL masked: user info, secret-looking parameters."""
        if "://" not in text or ("@" not in text and "?" not in text):
            return text
        try:
            parts = urlsplit(text)
        except ValueError:
            return text
        netloc = parts.netloc
        if "@" in netloc:
            userinfo, _, host = netloc.rpartition("@")
            user, colon, password = userinfo.partition(":")
            credential = f"{user}:{self.secret(password)}" if colon else self.secret(userinfo)
            netloc = f"{credential}@{host}"
        query = "&".join(self._parameter(part) for part in parts.query.split("&"))
        # Replaced in place: urlunsplit would normalise what is not masked (unix:/// -> unix:/).
        if netloc != parts.netloc:
            text = text.replace(f"//{parts.netloc}", f"//{netloc}", 1)
        if query != parts.query:
            text = text.replace(f"?{parts.query}", f"?{query}", 1)
        return text

    def _parameter(self, part: str) -> str:
        name, equals, value = part.partition("=")
        if equals and value and _SECRET_QUERY.search(unquote(name)):
            return f"{name}={self.secret(value)}"
        return part


def _prompt_files(registry: PromptRegistry) -> dict[str, PromptFiles]:
    found = {}
    for name in registry.names():
        labels: dict[str, str | CanaryLabel] = {
            label: target.version
            if target.weight is None
            else CanaryLabel(version=target.version, weight=target.weight)
            for label, target in registry.labels(name).items()
        }
        versions = {version.version: version.sha256 for version in registry.versions(name)}
        found[name] = PromptFiles(versions=versions, labels=labels)
    return found


# -- comparison -----------------------------------------------------------------------------------

ChangeKind = Literal["added", "removed", "changed"]


@dataclass(frozen=True)
class Change:
    """One difference, from the old side (the running gateway) to the new one (the file).

    `old` and `new` never hold a secret or its fingerprint: those are masked as `***`.
    """

    section: str
    """A top-level key of lockgate.yaml; `prompts` also holds the prompt files' changes."""
    item: str | None
    """The named thing changed (a model, key, prompt, OIDC issuer...), None for settings."""
    field: str | None
    """Key path within the item or section (`targets[0].weight`); None: the item as a whole."""
    kind: ChangeKind
    old: JsonValue = None
    new: JsonValue = None
    secret: bool = False
    """The value is (or holds) a secret: only the fact that it changed is shown."""
    restart: bool = False
    """A reload refuses this change: the gateway must be restarted."""
    violation: str | None = None
    """Why the change breaks a rule (a published prompt version edited)."""

    def as_json(self) -> dict[str, JsonValue]:
        found: dict[str, JsonValue] = asdict(self)
        return found


class _Missing:
    """A key present on one side only."""


MISSING = _Missing()
Side = JsonValue | _Missing
IMMUTABLE = "a published prompt version must not change: give the change a new version number"


def compare(old: ConfigSnapshot, new: ConfigSnapshot) -> list[Change]:
    """Every difference, in a stable order: sections in lockgate.yaml's order (prompt files
    under `prompts`), named items by name, fields in the config's order."""
    changes: list[Change] = []
    for section in _sections(old.config, new.config):
        before = old.config.get(section, MISSING)
        after = new.config.get(section, MISSING)
        if section in _COLLECTIONS:
            changes += _collection_changes(section, before, after)
        else:
            changes += _changes(section, None, _leaves(before, after, None))
        if section == "prompts":
            changes += _prompt_changes(old.prompts, new.prompts)
    return changes


def _sections(old: Mapping[str, JsonValue], new: Mapping[str, JsonValue]) -> list[str]:
    known = [info.alias or name for name, info in GatewayConfig.model_fields.items()]
    return known + sorted((set(old) | set(new)) - set(known))


def _collection_changes(section: str, old: Side, new: Side) -> list[Change]:
    sub, key = _COLLECTIONS[section]
    if sub is not None:  # e.g. auth: its oidc issuers by name, its other settings as settings
        old_rest, old_items = _split(old, sub)
        new_rest, new_items = _split(new, sub)
        changes = _changes(section, None, _leaves(old_rest, new_rest, None))
    else:
        old_items, new_items, changes = old, new, []
    before, after = _by_name(old_items, key), _by_name(new_items, key)
    if before is None or after is None:  # not lists of named items: compare as settings
        return changes + _changes(section, None, _leaves(old_items, new_items, sub))
    for name in sorted(set(before) | set(after)):
        if name not in before:
            shown = after[name]
            if isinstance(shown, dict):  # the name is the item's: not repeated in its value
                shown = {k: v for k, v in shown.items() if k != key}
            changes.append(Change(section, name, None, "added", new=_masked(shown)))
        elif name not in after:
            changes.append(Change(section, name, None, "removed"))
        else:
            changes += _changes(section, name, _leaves(before[name], after[name], None))
    if section == "models":
        changes += _glob_order(before, after)
    return changes


def _split(value: Side, sub: str) -> tuple[Side, Side]:
    if not isinstance(value, dict):
        return value, MISSING
    rest = {k: v for k, v in value.items() if k != sub}
    return rest, value.get(sub, MISSING)


def _by_name(value: Side, key: str) -> dict[str, JsonValue] | None:
    if isinstance(value, _Missing) or value is None:
        return {}
    if not isinstance(value, list):
        return None
    found: dict[str, JsonValue] = {}
    for item in value:
        if not isinstance(item, dict) or not isinstance(item.get(key), str) or item[key] in found:
            return None
        found[str(item[key])] = item
    return found


def _glob_order(old: Mapping[str, JsonValue], new: Mapping[str, JsonValue]) -> list[Change]:
    """Glob models match in config order: moving one changes which serves a name."""
    before = [name for name in old if "*" in name and name in new]
    after = [name for name in new if "*" in name and name in old]
    if before == after:
        return []
    return [Change("models", None, "order of globs", "changed", list(before), list(after))]


def _leaves(old: Side, new: Side, path: str | None) -> Iterator[tuple[str | None, Side, Side]]:
    """(key path, old, new) of each differing leaf; lists of equal length compare per item."""
    if old == new:
        return
    if isinstance(old, dict) and isinstance(new, dict):
        for key in [*old, *(k for k in new if k not in old)]:
            child = key if path is None else f"{path}.{key}"
            yield from _leaves(old.get(key, MISSING), new.get(key, MISSING), child)
    elif isinstance(old, list) and isinstance(new, list) and len(old) == len(new):
        for index, (a, b) in enumerate(zip(old, new, strict=True)):
            yield from _leaves(a, b, f"{path or ''}[{index}]")
    else:
        yield path, old, new


def _changes(
    section: str, item: str | None, leaves: Iterable[tuple[str | None, Side, Side]]
) -> list[Change]:
    found = []
    for field, old, new in leaves:
        if isinstance(old, _Missing):
            kind: ChangeKind = "added"
        elif isinstance(new, _Missing):
            kind = "removed"
        else:
            kind = "changed"
        before = None if isinstance(old, _Missing) else old
        after = None if isinstance(new, _Missing) else new
        where = ".".join(part for part in (section, field) if part)
        found.append(
            Change(
                section,
                item,
                field,
                kind,
                old=_masked(before),
                new=_masked(after),
                secret=_holds_secret(before) or _holds_secret(after),
                restart=item is None and _needs_restart(where),
            )
        )
    return found


def _needs_restart(path: str) -> bool:
    return any(path == p or path.startswith((f"{p}.", f"{p}[")) for p in RESTART_ONLY)


def _holds_secret(value: JsonValue) -> bool:
    if isinstance(value, str):
        return bool(_FINGERPRINT.search(value))
    if isinstance(value, dict):
        return any(_holds_secret(item) for item in value.values())
    if isinstance(value, list):
        return any(_holds_secret(item) for item in value)
    return False


def _masked(value: JsonValue) -> JsonValue:
    """`value` with every fingerprint replaced by `***`."""
    if isinstance(value, str):
        return _FINGERPRINT.sub("***", value)
    if isinstance(value, dict):
        return {key: _masked(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_masked(item) for item in value]
    return value


def _prompt_changes(old: Mapping[str, PromptFiles], new: Mapping[str, PromptFiles]) -> list[Change]:
    changes = []
    for name in sorted(set(old) | set(new)):
        if name not in old:
            changes.append(Change("prompts", name, None, "added", new=_prompt_summary(new[name])))
        elif name not in new:
            changes.append(Change("prompts", name, None, "removed"))
        else:
            changes += _version_changes(name, old[name].versions, new[name].versions)
            changes += _label_changes(name, old[name].labels, new[name].labels)
    return changes


def _prompt_summary(files: PromptFiles) -> dict[str, JsonValue]:
    return {
        "versions": list[JsonValue](_by_semver(files.versions)),
        "labels": {label: _label_json(target) for label, target in files.labels.items()},
    }


def _version_changes(name: str, old: Mapping[str, str], new: Mapping[str, str]) -> list[Change]:
    changes = []
    for version in _by_semver(set(old) | set(new)):
        if version not in old:
            changes.append(Change("prompts", name, version, "added"))
        elif version not in new:
            changes.append(Change("prompts", name, version, "removed"))
        elif old[version] != new[version]:
            changes.append(
                Change(
                    "prompts",
                    name,
                    version,
                    "changed",
                    old[version],
                    new[version],
                    violation=IMMUTABLE,
                )
            )
    return changes


def _label_changes(
    name: str, old: Mapping[str, str | CanaryLabel], new: Mapping[str, str | CanaryLabel]
) -> list[Change]:
    changes = []
    for label in sorted(set(old) | set(new)):
        before, after = old.get(label), new.get(label)
        if before == after:
            continue
        kind: ChangeKind = "added" if before is None else "removed" if after is None else "changed"
        field = f"labels.{label}"
        changes.append(
            Change("prompts", name, field, kind, _label_json(before), _label_json(after))
        )
    # Canaries take consecutive slices of the callers in labels.yaml order.
    before_order: list[JsonValue] = [k for k, v in old.items() if _canary(v) and k in new]
    after_order: list[JsonValue] = [k for k, v in new.items() if _canary(v) and k in old]
    if before_order != after_order:
        order = "order of canaries"
        changes.append(Change("prompts", name, order, "changed", before_order, after_order))
    return changes


def _canary(target: str | CanaryLabel) -> bool:
    return isinstance(target, CanaryLabel)


def _label_json(target: str | CanaryLabel | None) -> JsonValue:
    if isinstance(target, CanaryLabel):
        return {"version": target.version, "weight": target.weight}
    return target


def _by_semver(versions: Iterable[str]) -> list[str]:
    def key(text: str) -> tuple[int, semver.Version | None, str]:
        try:
            return 0, semver.Version.parse(text), text
        except ValueError:
            return 1, None, text

    return sorted(versions, key=key)
