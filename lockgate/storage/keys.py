"""API keys stored in the database: only their hash, a display prefix and their policy.

Every change bumps the change counter in the same transaction, so a worker that sees the new
counter value also sees the change.
"""

from __future__ import annotations

import builtins
import uuid
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, TypedDict, Unpack

from sqlalchemy import delete, select, update
from sqlalchemy.exc import IntegrityError

from lockgate.config.models import BudgetConfig, KeyConfig, LimitsConfig
from lockgate.storage.drivers import Driver
from lockgate.storage.engine import Transactions
from lockgate.storage.errors import Conflict, InvalidRecord, NameTaken
from lockgate.storage.policy import dump_budget, dump_limits, validated
from lockgate.storage.records import StoredKey, read_keys, stored_key
from lockgate.storage.revision import bump_revision
from lockgate.storage.tables import ApiKeyRow

__all__ = ["KeyChanges", "KeyStore", "StoredKey"]

MAX_PREFIX = 32


class KeyChanges(TypedDict, total=False):
    """What `KeyStore.update` may change; a key's name and hash stay as they are."""

    team: str | None
    models: Sequence[str] | None
    limits: LimitsConfig
    budget: BudgetConfig | None
    metadata: Mapping[str, str]
    expires_at: datetime | None


class KeyStore:
    """The `api_keys` table: reads on the driver, writes through SQLAlchemy's ORM."""

    __slots__ = ("_driver", "_tx")

    def __init__(self, driver: Driver, transactions: Transactions) -> None:
        self._driver = driver
        self._tx = transactions

    async def create(
        self,
        name: str,
        *,
        key_hash: str,
        prefix: str,
        team: str | None = None,
        models: Sequence[str] | None = None,
        limits: LimitsConfig | None = None,
        budget: BudgetConfig | None = None,
        metadata: Mapping[str, str] | None = None,
        expires_at: datetime | None = None,
    ) -> StoredKey:
        """Store a new key; `NameTaken` when the name is in use, `InvalidRecord` when invalid."""
        config = _key_config(
            {
                "name": name,
                "hash": key_hash,
                "team": team,
                "models": None if models is None else list(models),
                "limits": limits or LimitsConfig(),
                "budget": budget,
                "metadata": dict(metadata or {}),
                "expires_at": expires_at,
            }
        )
        if not 0 < len(prefix) <= MAX_PREFIX:
            raise InvalidRecord(f"invalid key: prefix must be 1 to {MAX_PREFIX} characters")
        row = ApiKeyRow(
            id=str(uuid.uuid4()),
            name=config.name,
            key_hash=config.hash,
            prefix=prefix,
            created_at=datetime.now(UTC),
            revoked_at=None,
        )
        _apply(row, config)
        try:
            async with self._tx.write() as session:
                session.add(row)
                await session.flush()
                await bump_revision(session)
        except IntegrityError as exc:
            raise _conflict(exc, config.name) from None
        return _stored(row)

    async def get(self, name: str) -> StoredKey | None:
        found = await read_keys(self._driver, name=name)
        return found[0] if found else None

    async def find_by_hash(self, key_hash: str) -> StoredKey | None:
        """The key with this hash, revoked or not (the caller checks)."""
        found = await read_keys(self._driver, key_hash=key_hash)
        return found[0] if found else None

    async def list(self, *, include_revoked: bool = False) -> builtins.list[StoredKey]:
        """Keys by creation time; revoked ones only when asked for."""
        return await read_keys(self._driver, include_revoked=include_revoked)

    async def revoke(self, name: str) -> bool:
        """Revoke the key; False when there is no such key or it is revoked already."""
        async with self._tx.write() as session:
            revoked = await session.scalar(
                update(ApiKeyRow)
                .where(ApiKeyRow.name == name, ApiKeyRow.revoked_at.is_(None))
                .values(revoked_at=datetime.now(UTC))
                .returning(ApiKeyRow.id)
                .execution_options(synchronize_session=False)
            )
            if revoked is None:
                return False
            await bump_revision(session)
            return True

    async def delete(self, name: str) -> bool:
        """Remove the key for good; False when there is no such key."""
        async with self._tx.write() as session:
            deleted = await session.scalar(
                delete(ApiKeyRow)
                .where(ApiKeyRow.name == name)
                .returning(ApiKeyRow.id)
                .execution_options(synchronize_session=False)
            )
            if deleted is None:
                return False
            await bump_revision(session)
            return True

    async def update(self, name: str, /, **changes: Unpack[KeyChanges]) -> StoredKey | None:
        """Change a key's policy; None when there is no such key."""
        unknown = changes.keys() - KeyChanges.__optional_keys__
        if unknown:
            raise InvalidRecord(f"cannot change {', '.join(sorted(unknown))} of a key")
        async with self._tx.write() as session:
            row = await session.scalar(
                select(ApiKeyRow).where(ApiKeyRow.name == name).with_for_update()
            )
            if row is None:
                return None
            current = _stored(row).as_config().model_dump()
            merged: dict[str, Any] = {**current, **changes}
            if merged["models"] is not None:
                merged["models"] = list(merged["models"])
            merged["metadata"] = dict(merged["metadata"] or {})
            _apply(row, _key_config(merged))
            await session.flush()
            await bump_revision(session)
            return _stored(row)


def _key_config(fields: dict[str, Any]) -> KeyConfig:
    """The key validated as the config file's keys are, its expiry moved to UTC."""
    config = validated(KeyConfig, fields, "key")
    if config.expires_at is None:
        return config
    try:
        expires_at = config.expires_at.astimezone(UTC)
    except OverflowError:
        raise InvalidRecord("invalid key: expires_at: out of range once in UTC") from None
    return config.model_copy(update={"expires_at": expires_at})


def _apply(row: ApiKeyRow, config: KeyConfig) -> None:
    row.team = config.team
    row.models = config.models
    row.limits = dump_limits(config.limits)
    row.budget = dump_budget(config.budget)
    row.meta = dict(config.metadata)
    row.expires_at = config.expires_at


def _stored(row: ApiKeyRow) -> StoredKey:
    return stored_key(
        (
            row.id,
            row.name,
            row.key_hash,
            row.prefix,
            row.team,
            row.models,
            row.limits,
            row.budget,
            row.meta,
            row.expires_at,
            row.created_at,
            row.revoked_at,
        )
    )


def _conflict(exc: IntegrityError, name: str) -> Conflict:
    # Only the first line: PostgreSQL's DETAIL line repeats the offending values.
    reason = str(exc.orig).splitlines()[0] if str(exc.orig) else ""
    if "key_hash" in reason:
        return Conflict("a key with the same hash is already stored")
    return NameTaken(f"a key named {name!r} already exists")
